"""The Neural Turing Machine's addressing and memory operations against the paper's equations
in float64 (Graves et al. 2014, §3), and the properties they promise."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab
from attnlab import ModelConfig
from attnlab.config import ConfigError
from attnlab.models.memory import content_weights, erase_and_add, read
from attnlab.models.ntm import interpolate, sharpen, shift
from tests import memory_reference as ref
from tests.reference import relative_error

B, H, N, W = 2, 3, 7, 5


def distributions(*shape):
    return torch.softmax(torch.randn(*shape, dtype=torch.float64), dim=-1)


def each_head(function, *tensors):
    """`function` applied to every (batch, head) slice of the tensors: (B, H, ...)."""
    return torch.stack([torch.stack([function(*(t[b, h] for t in tensors)) for h in range(H)])
                        for b in range(B)])  # fmt: skip


def test_content_weights_are_a_softmax_of_the_scaled_cosine_similarity():
    memory = torch.randn(B, N, W, dtype=torch.float64)
    keys = torch.randn(B, H, W, dtype=torch.float64)
    beta = torch.rand(B, H, dtype=torch.float64) * 5
    expected = torch.stack([torch.stack([ref.content(memory[b], keys[b, h], float(beta[b, h]))
                                         for h in range(H)]) for b in range(B)])  # fmt: skip
    assert relative_error(content_weights(memory, keys, beta), expected) < 1e-12


def test_interpolation_gates_between_content_and_the_last_weighting():
    content, previous = distributions(B, H, N), distributions(B, H, N)
    gate = torch.rand(B, H, dtype=torch.float64)
    expected = torch.stack([torch.stack([ref.interpolation(content[b, h], previous[b, h],
                                                           float(gate[b, h])) for h in range(H)])
                            for b in range(B)])  # fmt: skip
    assert relative_error(interpolate(content, previous, gate), expected) < 1e-12


@pytest.mark.parametrize("r", [0, 1, 2])
def test_shift_is_a_circular_convolution(r):
    weights, kernel = distributions(B, H, N), distributions(B, H, 2 * r + 1)
    expected = each_head(ref.circular_convolution, weights, kernel)
    assert relative_error(shift(weights, kernel), expected) < 1e-12


def test_a_shift_by_one_moves_a_sharp_weighting_one_slot_on_around_the_end():
    weights = torch.zeros(1, 1, N, dtype=torch.float64)
    weights[..., N - 1] = 1
    kernel = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)  # s[+1] = 1
    assert shift(weights, kernel)[0, 0].argmax() == 0


def test_sharpening_raises_to_gamma_and_renormalises():
    weights = distributions(B, H, N)
    gamma = 1 + torch.rand(B, H, dtype=torch.float64) * 4
    expected = torch.stack([torch.stack([ref.sharpening(weights[b, h], float(gamma[b, h]))
                                         for h in range(H)]) for b in range(B)])  # fmt: skip
    assert relative_error(sharpen(weights, gamma), expected) < 1e-12


def test_sharpening_stays_finite_where_powers_underflow_in_float32():
    weights = torch.full((1, 1, 128), 1 / 128, requires_grad=True)  # (1/128)^21 < 1e-44
    gamma = torch.full((1, 1), 21.0, requires_grad=True)
    out = sharpen(weights, gamma)
    assert torch.allclose(out.sum(-1), torch.ones(1, 1))
    (out * torch.arange(128.0)).sum().backward()
    assert torch.isfinite(weights.grad).all() and torch.isfinite(gamma.grad).all()


def test_reads_are_weighted_sums_of_the_slots():
    memory, weights = torch.randn(B, N, W, dtype=torch.float64), distributions(B, H, N)
    expected = torch.stack([torch.stack([ref.read_vector(memory[b], weights[b, h])
                                         for h in range(H)]) for b in range(B)])  # fmt: skip
    assert relative_error(read(memory, weights), expected) < 1e-12


@pytest.mark.parametrize("heads", [1, 3])
def test_writes_erase_then_add(heads):
    memory = torch.randn(B, N, W, dtype=torch.float64)
    weights = distributions(B, heads, N)
    erase = torch.rand(B, heads, W, dtype=torch.float64)
    add = torch.randn(B, heads, W, dtype=torch.float64)
    expected = torch.stack([ref.write(memory[b], weights[b], erase[b], add[b]) for b in range(B)])
    assert relative_error(erase_and_add(memory, weights, erase, add), expected) < 1e-12


def test_full_erasure_empties_a_slot_and_the_add_fills_it():
    memory = torch.randn(1, N, W, dtype=torch.float64)
    weights = torch.zeros(1, 1, N, dtype=torch.float64)
    weights[..., 2] = 1
    add = torch.randn(1, 1, W, dtype=torch.float64)
    out = erase_and_add(memory, weights, torch.ones(1, 1, W, dtype=torch.float64), add)
    assert torch.allclose(out[0, 2], add[0, 0], rtol=0, atol=1e-14)
    assert torch.equal(out[0, 3:], memory[0, 3:])


def test_memory_operations_pass_gradcheck():
    memory = torch.randn(1, 4, 3, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)
    beta = torch.rand(1, 2, dtype=torch.float64, requires_grad=True)
    w = distributions(1, 2, 4).requires_grad_()
    w2 = distributions(1, 2, 4).requires_grad_()
    gate = torch.rand(1, 2, dtype=torch.float64, requires_grad=True)
    kernel = distributions(1, 2, 3).requires_grad_()
    gamma = (1 + torch.rand(1, 2, dtype=torch.float64)).requires_grad_()
    erase = torch.rand(1, 2, 3, dtype=torch.float64, requires_grad=True)
    add = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(content_weights, (memory, keys, beta))
    assert gradcheck(interpolate, (w, w2, gate))
    assert gradcheck(shift, (w, kernel))
    assert gradcheck(sharpen, (w, gamma))
    assert gradcheck(read, (memory, w))
    assert gradcheck(erase_and_add, (memory, w, erase, add))  # two heads
    assert gradcheck(erase_and_add, (memory, w[:, :1], erase[:, :1], add[:, :1]))  # one head


def small_ntm(**options) -> attnlab.NTM:
    cfg = ModelConfig(model="ntm", width=12, heads=1, options={"ntm": {"slots": 9,
                      "slot_width": 4, "read_heads": 2, "write_heads": 2, **options}})  # fmt: skip
    return attnlab.NTM(cfg, inputs=6, outputs=4).double()


@torch.no_grad()
def test_one_step_reads_before_writing_with_the_papers_addressing():
    model = small_ntm()
    stack = model.stack
    x = torch.randn(3, 12, dtype=torch.float64)
    carry = stack.initial(3, x)
    carry["memory"] = torch.randn(3, 9, 4, dtype=torch.float64)  # a memory worth reading
    y, new = stack.step(x, carry, None)
    out, _ = stack.controller(torch.cat((x, carry["reads"].flatten(1)), -1), carry)
    p = stack.head_parameters(out)
    for b in range(3):
        weights = [ref.ntm_weighting(carry["memory"][b], carry["weights"][b, h], p["key"][b, h],
                                     float(p["strength"][b, h]), float(p["gate"][b, h]),
                                     p["shift"][b, h], float(p["sharpening"][b, h]))
                   for h in range(4)]  # fmt: skip
        assert relative_error(new["weights"][b], torch.stack(weights)) < 1e-10
        reads = torch.stack([ref.read_vector(carry["memory"][b], w) for w in weights[:2]])
        assert relative_error(new["reads"][b], reads) < 1e-10
        memory = ref.write(carry["memory"][b], weights[2:], p["erase"][b], p["add"][b])
        assert relative_error(new["memory"][b], memory) < 1e-10
    expected = stack.to_output(torch.cat((out, new["reads"].flatten(1)), -1)).clamp(-20, 20)
    assert torch.equal(y, expected)


def test_every_weighting_is_a_distribution_over_the_slots():
    model = small_ntm()
    weightings = model.memory_weightings(torch.randint(0, 2, (2, 15, 6)).double())
    assert set(weightings) == {"read", "write"}
    for w in weightings.values():
        assert w.shape == (2, 15, 2, 9)
        assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(2, 15, 2).double())


def test_the_memory_starts_as_a_small_constant_and_reads_and_weightings_are_learned():
    stack = small_ntm().stack
    carry = stack.initial(2, torch.zeros(1, dtype=torch.float64))
    assert torch.allclose(carry["memory"], torch.tensor(1e-6, dtype=torch.float64))
    # not uniform: else every slot looks alike to every head and stays so in training
    assert carry["weights"].std(dim=-1).min() > 0.01 / 9
    names = {name for name, _ in stack.named_parameters()}
    # the constant is where the learned start memory begins, as in Collier & Beel's code
    assert {"start_reads", "start_weights", "start_memory"} <= names


def test_training_tells_the_slots_of_the_constant_start_memory_apart():
    """From the constant start, every slot looks alike to content addressing, and while the
    write head is still spread out, writes keep them alike. The start memory is learned and
    its gradient (checked against float64 finite differences) follows the heads' weightings,
    so one training step already makes the slots differ."""
    model = small_ntm()
    x = torch.randint(0, 2, (2, 7, 6), generator=torch.Generator().manual_seed(0)).double()
    start = model.stack.start_memory

    def outputs(memory):
        return torch.func.functional_call(model, {"stack.start_memory": memory}, (x,))

    assert gradcheck(outputs, (start.detach().clone().requires_grad_(),), eps=1e-10, atol=1e-6)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(x).square().sum().backward()
    optimizer.step()
    change = start.detach() - 1e-6
    assert (change.std(dim=0) > 1e-3 * change.abs().mean()).all()  # across slots, per column


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ConfigError, match="shift-range"):
        ModelConfig(model="ntm", options={"ntm": {"slots": 4, "shift_range": 2}})
    with pytest.raises(ConfigError, match="holds no attention"):
        ModelConfig(model="ntm", attention="linear")


def test_the_python_api_gives_the_papers_copy_machine():
    model = attnlab.NTM()
    assert (model.inputs, model.outputs, model.memory_slots()) == (10, 8, 128)
    assert model.cfg.width == 100 and model.kind == "ntm"
    assert model(torch.zeros(2, 5, 10)).shape == (2, 5, 8)


def test_a_compiled_step_gives_the_eager_outputs_and_gradients():
    """The capture is what can break here (the carry, the loop kept out of the graph); the
    backend that checks it quickly stands in for inductor, whose speed the benchmarks use."""
    model = small_ntm().float()
    x = torch.randn(3, 6, 6)
    eager = model(x)
    eager.square().sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.stack.compile_step(backend="aot_eager")
    compiled = model(x)
    compiled.square().sum().backward()
    assert torch.allclose(compiled, eager, atol=1e-6)
    for p, grad in zip(model.parameters(), expected, strict=True):
        assert torch.allclose(p.grad, grad, atol=1e-5)
