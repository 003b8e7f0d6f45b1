import copy
import math

import pytest
import torch

import attnlab
from attnlab import Classifier, LanguageModel, ModelConfig
from attnlab.models.universal import UniversalTransformer
from tests.reference import relative_error

pytestmark = pytest.mark.usefixtures("one_thread")


UT_OPTIONS = ("max_steps", "act", "act_epsilon", "ponder_cost")


def universal(**overrides):
    base = dict(vocab_size=40, context=12, width=32, heads=4, model="universal")
    options = {"max_steps": 5, **{k: overrides.pop(k) for k in UT_OPTIONS if k in overrides}}
    return ModelConfig(**{**base, **overrides}, options={"universal": options})


def diverse_halting(model, seed=1):
    """Halting weights large enough that positions stop after different numbers of steps."""
    generator = torch.Generator().manual_seed(seed)
    halting = model.halting if isinstance(model, UniversalTransformer) else model.stack.halting
    with torch.no_grad():
        halting.weight.copy_(torch.randn(halting.weight.shape, generator=generator) * 0.05)
        halting.bias.fill_(0.0)
    return model


def act_reference(probabilities, threshold, max_steps):
    """Graves 2016, §2, position by position: N = the first step whose halting probabilities
    reach the threshold (or the last step); weights p^1 … p^{N-1}, then R = 1 - Σ_{n<N} p^n.
    probabilities (b, t, steps) -> weights (b, t, steps), N (b, t), R (b, t), in float64."""
    b, t, steps = probabilities.shape
    weights = torch.zeros(b, t, steps, dtype=torch.float64)
    halting_step = torch.zeros(b, t, dtype=torch.float64)
    remainder = torch.zeros(b, t, dtype=torch.float64)
    for i in range(b):
        for j in range(t):
            total = 0.0
            for n in range(steps):
                p = probabilities[i, j, n].item()
                if total + p >= threshold or n + 1 == max_steps:
                    weights[i, j, n] = 1.0 - total
                    halting_step[i, j], remainder[i, j] = n + 1, 1.0 - total
                    break
                weights[i, j, n] = p
                total += p
    return weights, halting_step, remainder


def coordinates_reference(t, step, width):
    """Dehghani et al. 2019, §2.1: sinusoid of the position plus sinusoid of the step."""
    out = torch.zeros(t, width, dtype=torch.float64)
    for i in range(t):
        for j in range(width // 2):
            frequency = 10000 ** (2 * j / width)
            out[i, 2 * j] = math.sin(i / frequency) + math.sin(step / frequency)
            out[i, 2 * j + 1] = math.cos(i / frequency) + math.cos(step / frequency)
    return out


def universal_reference(stack, x, causal):
    """Dehghani et al. 2019 with Graves's ACT, in float64, the halting logic position by
    position: p^n = σ(w·(s^{n-1} + P^n) + b); y = Σ_n weight^n s^n; a halted position's state
    stays as it was."""
    block = copy.deepcopy(stack.block).double()
    w, bias = stack.halting.weight.double()[0], stack.halting.bias.double()
    b, t, width = x.shape
    state, out = x.double().clone(), torch.zeros(b, t, width, dtype=torch.float64)
    total, halted = torch.zeros(b, t, dtype=torch.float64), set()
    for n in range(1, stack.max_steps + 1):
        coordinated = state + coordinates_reference(t, n, width)
        new = block(coordinated, causal=causal)
        for i in range(b):
            for j in range(t):
                if (i, j) in halted:
                    continue
                p = torch.sigmoid(coordinated[i, j] @ w + bias)
                if total[i, j] + p >= stack.threshold or n == stack.max_steps:
                    weight = 1.0 - total[i, j]
                    halted.add((i, j))
                else:
                    weight = p
                    total[i, j] += p
                out[i, j] += weight * new[i, j]
                state[i, j] = new[i, j]
    return out


@pytest.mark.parametrize("causal", [True, False])
def test_adaptive_steps_match_the_float64_reference(causal):
    stack = diverse_halting(UniversalTransformer(universal())).eval()
    x = torch.randn(2, 9, 32) * 0.1
    out = stack(x, causal=causal)
    assert len(set((stack.halting_weights > 0).sum(-1).flatten().tolist())) > 1
    assert relative_error(out, universal_reference(stack, x, causal)) < 1e-5


def test_halting_weights_follow_graves_and_sum_to_one():
    lm = diverse_halting(LanguageModel(universal()))
    lm(torch.randint(0, 40, (3, 12)))
    stack = lm.stack
    weights, halting_step, _ = act_reference(stack.halting_probabilities, stack.threshold, 5)
    assert len(set(halting_step.flatten().tolist())) > 2  # positions really differ
    assert torch.allclose(stack.halting_weights.double(), weights, atol=1e-6)
    assert torch.allclose(stack.halting_weights.sum(-1), torch.ones(3, 12), atol=1e-6)


def test_a_position_halting_at_step_one_gets_one_block_application():
    stack = UniversalTransformer(universal()).eval()
    with torch.no_grad():
        stack.halting.weight.zero_()
        stack.halting.weight[0, 0] = 1.0  # p depends on feature 0 only
        stack.halting.bias.zero_()
    x = torch.randn(2, 6, 32)
    x[:, 0, 0], x[:, 1:, 0] = 50.0, -50.0  # position 0 halts at once, the others never
    out = stack(x)
    once = stack.block(x + stack.coordinates(1, 6, 0))
    assert torch.equal(stack.halting_weights[:, 0], torch.tensor([1.0, 0, 0, 0, 0]).expand(2, 5))
    assert torch.allclose(out[:, 0], once[:, 0], atol=1e-6)
    assert stack.stats["ponder_steps_max"] == 5

    calls = []
    stack.block.register_forward_hook(lambda *args: calls.append(1))
    x[:, :, 0] = 50.0  # now every position halts at step 1
    out = stack(x)
    assert len(calls) == 1 and stack.stats["ponder_steps_max"] == 1
    assert torch.allclose(out, stack.block(x + stack.coordinates(1, 6, 0)), atol=1e-6)


def test_ponder_cost_is_tau_n_plus_r_and_has_a_gradient():
    lm = diverse_halting(LanguageModel(universal(ponder_cost=0.05)))
    tokens = torch.randint(0, 40, (3, 12))
    loss, stats = lm.loss(tokens, torch.randint(0, 40, (3, 12)))
    stack = lm.stack
    _, halting_step, remainder = act_reference(stack.halting_probabilities, stack.threshold, 5)
    expected = 0.05 * (halting_step + remainder).mean()
    assert math.isclose(stack.aux_loss.item(), expected.item(), rel_tol=1e-5)
    assert stats["ponder_steps_mean"] == pytest.approx(halting_step.mean().item())
    stack.aux_loss.backward()
    assert stack.halting.weight.grad.abs().sum() > 0 and stack.halting.bias.grad != 0


def test_fixed_steps_equal_k_applications_of_the_shared_block():
    stack = UniversalTransformer(universal(act=False, max_steps=3, dropout=0.0)).eval()
    assert stack.halting is None
    x = torch.randn(2, 7, 32)
    block = copy.deepcopy(stack.block).double()
    expected = x.double()
    for step in (1, 2, 3):
        expected = block(expected + coordinates_reference(7, step, 32), causal=True)
    assert relative_error(stack(x, causal=True), expected) < 1e-5


@pytest.mark.parametrize("act", [True, False])
def test_language_model_is_causal(act):
    lm = LanguageModel(universal(act=act)).eval()
    if act:
        diverse_halting(lm)
    tokens = torch.randint(0, 40, (2, 12))
    changed = tokens.clone()
    changed[:, 7:] = torch.randint(0, 40, (2, 5))
    assert torch.allclose(lm(tokens)[:, :7], lm(changed)[:, :7], atol=1e-6)
    assert not torch.allclose(lm(tokens)[:, 7:], lm(changed)[:, 7:])


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_changes_neither_the_classes_nor_the_ponder_cost(pooling):
    clf = diverse_halting(Classifier(universal(), num_classes=3, pooling=pooling)).eval()
    with torch.no_grad():  # real tokens halt after 2-3 steps; padding alone would never halt
        clf.stack.halting.bias.fill_(0.5)
        clf.embedding.tokens.weight[0] = -1000 * clf.stack.halting.weight[0]
    lengths = [5, 12, 9]
    texts = [torch.randint(1, 40, (n,)) for n in lengths]
    tokens = torch.zeros(3, 12, dtype=torch.long)
    mask = torch.zeros(3, 12, dtype=torch.bool)
    for i, text in enumerate(texts):
        tokens[i, : len(text)], mask[i, : len(text)] = text, True
    batched = clf(tokens, mask)
    calls = []
    clf.stack.block.register_forward_hook(lambda *args: calls.append(1))
    for i, text in enumerate(texts):
        alone = clf(text[None])
        alone_cost, alone_stats, alone_calls = clf.stack.aux_loss, clf.stack.stats, len(calls)
        assert torch.allclose(batched[i], alone[0], atol=1e-5)
        clf(tokens[i : i + 1], mask[i : i + 1])  # the same text, padded to 12
        assert torch.allclose(clf.stack.aux_loss, alone_cost, atol=1e-6)
        assert clf.stack.stats == pytest.approx(alone_stats)
        assert len(calls) == 2 * alone_calls  # padding runs no extra steps
        calls.clear()


@pytest.mark.parametrize("act", [True, False])
def test_cached_generation_equals_uncached_past_the_context(act):
    lm = LanguageModel(universal(act=act, context=8)).eval()
    if act:
        diverse_halting(lm)
    prompt = torch.randint(0, 40, (2, 5))
    cached = lm.generate(prompt, 25, temperature=0)
    uncached = lm.generate(prompt, 25, temperature=0, use_cache=False)
    assert cached.shape == (2, 30)
    assert torch.equal(cached, uncached)


def test_cache_holds_every_step_even_when_the_prompt_halts_early():
    """A prompt that halts after one step, then tokens that take every step: their later
    steps attend to the prompt's keys at those steps, which the cache must hold."""
    lm = LanguageModel(universal()).eval()
    with torch.no_grad():
        lm.stack.halting.weight.zero_()
        lm.stack.halting.weight[0, 0] = 1.0  # p depends on feature 0 only
        lm.stack.halting.bias.zero_()
        lm.embedding.tokens.weight[1, 0] = 50.0  # token 1 halts at step 1
        lm.embedding.tokens.weight[2, 0] = -50.0  # token 2 never halts early
    tokens = torch.tensor([[1, 1, 1, 1, 2, 2, 1, 2]])
    state = lm.new_state()
    pieces = [lm(tokens[:, :4], state)]
    assert lm.stack.stats["ponder_steps_max"] == 1
    assert all(cache.length == 4 for cache in state)
    pieces += [lm(tokens[:, i : i + 1], state) for i in range(4, 8)]
    assert lm.stack.stats["ponder_steps_max"] == 5
    assert torch.allclose(torch.cat(pieces, dim=1), lm(tokens), atol=1e-5)


def test_halting_bias_starts_at_one_and_survives_a_round_trip(tmp_path):
    lm = LanguageModel(universal())
    assert lm.stack.halting.bias.item() == 1.0  # not zeroed by the model's initialisation
    diverse_halting(lm).save(tmp_path)
    loaded = attnlab.load(tmp_path)
    tokens = torch.randint(0, 40, (2, 12))
    assert torch.equal(loaded(tokens), lm.eval()(tokens))
    assert torch.equal(loaded.stack.halting.weight, lm.stack.halting.weight)
