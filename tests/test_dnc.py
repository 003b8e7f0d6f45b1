"""The Differentiable Neural Computer's memory management against its equations in float64
(Graves et al. 2016, Methods): usage, allocation, temporal links, read modes."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab
from attnlab import ModelConfig
from attnlab.models.dnc import (
    allocation,
    directional_weights,
    retention,
    update_links,
    update_precedence,
    update_usage,
)
from tests import memory_reference as ref
from tests.reference import relative_error

B, R, N = 2, 3, 6


def rand(*shape):
    return torch.rand(*shape, dtype=torch.float64)


def write_weightings(*shape):
    """Non-negative, summing to at most 1, like a gated write weighting."""
    return torch.softmax(torch.randn(*shape, dtype=torch.float64), -1) * rand(*shape[:-1], 1)


def test_usage_rises_with_writes_and_falls_with_freed_reads():
    free, read_weights = rand(B, R), torch.softmax(torch.randn(B, R, N, dtype=torch.float64), -1)
    usage, write = rand(B, N), write_weightings(B, N)
    kept = retention(free, read_weights)
    for b in range(B):
        assert relative_error(kept[b], ref.retention_vector(free[b], read_weights[b])) < 1e-12
        expected = ref.usage(usage[b], write[b], kept[b])
        assert relative_error(update_usage(usage, write, kept)[b], expected) < 1e-12


def test_allocation_follows_sorted_usage():
    usage = rand(B, N)
    expected = torch.stack([ref.allocation(u) for u in usage])
    assert relative_error(allocation(usage), expected) < 1e-12


def test_allocation_breaks_ties_by_slot_index():
    usage = torch.tensor([[0.5, 0.2, 0.2, 0.9, 0.2, 0.0]], dtype=torch.float64)
    a = allocation(usage)[0]
    assert torch.allclose(a, ref.allocation(usage[0]))
    # slot 5 is free; then the three at 0.2 in slot order, then 0.5, then 0.9
    assert a[5] == 1 and torch.all(a[:5] == 0)
    usage[0, 5] = 0.2
    a = allocation(usage)[0]
    assert torch.allclose(a[[1, 2, 4]], torch.tensor([0.8, 0.16, 0.032], dtype=torch.float64))


def test_allocation_weighting_is_at_most_a_distribution():
    a = allocation(rand(50, N))
    assert (a >= 0).all() and (a.sum(-1) <= 1 + 1e-12).all()


def test_links_record_the_order_of_writes_with_a_zero_diagonal():
    links, precedence = rand(B, N, N), write_weightings(B, N)
    write = write_weightings(B, N)
    new = update_links(links, write, precedence)
    for b in range(B):
        assert relative_error(new[b], ref.links(links[b], write[b], precedence[b])) < 1e-12
        expected = ref.precedence(precedence[b], write[b])
        assert relative_error(update_precedence(precedence, write)[b], expected) < 1e-12
    assert torch.all(new.diagonal(dim1=1, dim2=2) == 0)


def test_forward_and_backward_weightings_follow_the_links():
    links, read_weights = rand(B, N, N), torch.softmax(torch.randn(B, R, N).double(), -1)
    forward, backward = directional_weights(links, read_weights)
    for b in range(B):
        for h in range(R):
            f, back = ref.forward_backward(links[b], read_weights[b, h])
            assert relative_error(forward[b, h], f) < 1e-12
            assert relative_error(backward[b, h], back) < 1e-12


def test_after_writing_slots_in_turn_forward_reads_move_on_and_backward_reads_move_back():
    links, precedence = torch.zeros(1, N, N).double(), torch.zeros(1, N).double()
    for slot in (3, 0, 4):  # write one slot at a time, in this order
        write = torch.zeros(1, N).double()
        write[0, slot] = 1
        links = update_links(links, write, precedence)
        precedence = update_precedence(precedence, write)
    at_zero = torch.zeros(1, 1, N).double()
    at_zero[..., 0] = 1
    forward, backward = directional_weights(links, at_zero)
    assert forward[0, 0].argmax() == 4 and backward[0, 0].argmax() == 3


def test_memory_management_passes_gradcheck():
    usage = torch.tensor([[0.3, 0.7, 0.1, 0.5]], dtype=torch.float64, requires_grad=True)
    write = write_weightings(1, 4).requires_grad_()
    precedence = write_weightings(1, 4).requires_grad_()
    links = rand(1, 4, 4).requires_grad_()
    free, reads = rand(1, 2).requires_grad_(), write_weightings(1, 2, 4).requires_grad_()
    assert gradcheck(allocation, (usage,))  # distinct usages: the order is fixed nearby
    assert gradcheck(retention, (free, reads))
    assert gradcheck(update_usage, (usage, write, rand(1, 4).requires_grad_()))
    assert gradcheck(update_links, (links, write, precedence))
    assert gradcheck(update_precedence, (precedence, write))
    assert gradcheck(directional_weights, (links, reads))


def small_dnc() -> attnlab.DNC:
    cfg = ModelConfig(model="dnc", width=12, heads=1,
                      options={"dnc": {"slots": N, "slot_width": 4, "read_heads": R}})  # fmt: skip
    return attnlab.DNC(cfg, inputs=6, outputs=4).double()


@torch.no_grad()
def test_one_step_follows_the_papers_order():
    stack = small_dnc().stack
    x = torch.randn(B, 12, dtype=torch.float64)
    carry = stack.initial(B, x)
    carry.update(memory=torch.randn(B, N, 4).double(), usage=rand(B, N), links=rand(B, N, N),
                 precedence=write_weightings(B, N), write_weights=write_weightings(B, N),
                 read_weights=write_weightings(B, R, N))  # fmt: skip
    _, new = stack.step(x, carry, None)
    out, _ = stack.controller(torch.cat((x, carry["reads"].flatten(1)), -1), carry)
    xi = stack.parse_interface(out)
    for b in range(B):
        psi = ref.retention_vector(xi["free_gates"][b], carry["read_weights"][b])
        usage = ref.usage(carry["usage"][b], carry["write_weights"][b], psi)
        found = ref.content(carry["memory"][b], xi["write_key"][b, 0],
                            float(xi["write_strength"][b]))  # fmt: skip
        g_a, g_w = float(xi["allocation_gate"][b]), float(xi["write_gate"][b])
        write = g_w * (g_a * ref.allocation(usage) + (1 - g_a) * found)
        memory = ref.write(carry["memory"][b], [write], xi["erase"][b], xi["write_vector"][b])
        links = ref.links(carry["links"][b], write, carry["precedence"][b])
        assert relative_error(new["usage"][b], usage) < 1e-10
        assert relative_error(new["write_weights"][b], write) < 1e-10
        assert relative_error(new["memory"][b], memory) < 1e-10
        assert relative_error(new["links"][b], links) < 1e-10
        for h in range(R):
            f, back = ref.forward_backward(links, carry["read_weights"][b, h])
            c = ref.content(memory, xi["read_keys"][b, h], float(xi["read_strengths"][b, h]))
            pi = xi["read_modes"][b, h]
            expected = pi[0] * back + pi[1] * c + pi[2] * f
            assert relative_error(new["read_weights"][b, h], expected) < 1e-10
            assert relative_error(new["reads"][b, h], ref.read_vector(memory, expected)) < 1e-10


def test_read_and_write_weightings_are_at_most_distributions():
    weightings = small_dnc().memory_weightings(torch.randint(0, 2, (2, 15, 6)).double())
    for w in weightings.values():
        assert (w >= 0).all() and (w.sum(-1) <= 1 + 1e-12).all()
    assert weightings["read"].shape == (2, 15, R, N) and weightings["write"].shape == (2, 15, 1, N)


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_the_python_api_builds_either_controller(controller):
    cfg = ModelConfig(model="dnc", width=16, heads=1, options={"controller": controller})
    model = attnlab.DNC(cfg)
    assert model.kind == "dnc" and model(torch.zeros(2, 5, 10)).shape == (2, 5, 8)
