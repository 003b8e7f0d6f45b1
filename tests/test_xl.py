import math

import pytest
import torch
import torch.nn.functional as F

import attnlab
from attnlab import LanguageModel, ModelConfig
from attnlab.attention import dense
from attnlab.config import ConfigError
from attnlab.models.xl import LayerMemory, MemoryAttention
from attnlab.positions.relative import relative_shift
from tests.reference import allowed_positions, relative_error

pytestmark = pytest.mark.usefixtures("one_thread")


def xl(memory=8, clamp_len=0, path=None, **overrides):
    base = dict(vocab_size=40, context=8, depth=2, width=32, heads=4, model="xl")
    options = {"xl": {"memory": memory}, "relative": {"clamp_len": clamp_len}}
    if path:
        options["dense"] = {"path": path}
    return ModelConfig(**{**base, **overrides}, options=options)


def by_segments(lm, tokens, length, state):
    """Logits of `tokens` fed `length` tokens at a time through one state."""
    return torch.cat([lm(segment, state) for segment in tokens.split(length, dim=1)], dim=1)


def segment_window(starts, memory):
    """(n, n) bool: position p sees keys j with starts[p] - memory <= j <= p, where starts[p] is
    the first position of p's segment. This is what a memory of `memory` positions lets a
    segment see, at every layer."""
    n = len(starts)
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for p in range(n):
        allowed[p, max(0, starts[p] - memory) : p + 1] = True
    return allowed


def one_pass_with_window(lm, tokens, allowed, monkeypatch):
    """Logits of the whole of `tokens` in one call, every layer's attention restricted to
    `allowed` (n, n) instead of the causal mask."""
    with monkeypatch.context() as patch:
        patch.setattr(dense, "allowed_mask", lambda *args: allowed[None, None])
        return lm(tokens)


def sinusoid(distance, width):
    """Vaswani et al. 2017, §3.5, for one (possibly negative) distance."""
    out = torch.zeros(width, dtype=torch.float64)
    for i in range(width // 2):
        angle = distance / 10000 ** (2 * i / width)
        out[2 * i], out[2 * i + 1] = math.sin(angle), math.cos(angle)
    return out


def relative_attention_reference(layer, memory, x, causal, clamp):
    """Dai et al. 2019, §3.3, pair by pair in float64:
    A_ij = q_iᵀk_j + q_iᵀW_R R_{i-j} + uᵀk_j + vᵀW_R R_{i-j}, softmax over j, times v_j."""
    b, t, width = x.shape
    h, d = layer.heads, layer.head_dim
    context = torch.cat((memory, x), dim=1).double()
    s = context.shape[1]
    weight = {name: p.double() for name, p in layer.named_parameters()}
    q = x.double() @ weight["to_q.weight"].T + weight["to_q.bias"]
    kv = context @ weight["to_kv.weight"].T + weight["to_kv.bias"]
    k, v = kv[..., : h * d], kv[..., h * d :]
    u, v_bias = weight["position.content_bias"], weight["position.position_bias"]
    allowed = allowed_positions(t, s, causal)
    out = torch.zeros(b, t, h * d, dtype=torch.float64)
    for n in range(b):
        for head in range(h):
            cols = slice(head * d, (head + 1) * d)
            scores = torch.full((t, s), float("-inf"), dtype=torch.float64)
            for i in range(t):
                for j in range(s):
                    if not allowed[i, j]:
                        continue
                    distance = max(-clamp, min(clamp, s - t + i - j))
                    r = weight["position.to_r.weight"][cols] @ sinusoid(distance, width)
                    q_i, k_j = q[n, i, cols], k[n, j, cols]
                    scores[i, j] = (
                        q_i @ k_j + q_i @ r + u[head] @ k_j + v_bias[head] @ r
                    ) / math.sqrt(d)
            out[n, :, cols] = scores.softmax(-1) @ v[n, :, cols]
    return out @ weight["unify_heads.weight"].T + weight["unify_heads.bias"]


def test_relative_shift_puts_each_distance_under_its_key():
    t, s = 4, 7
    scores = torch.randn(2, 3, t, s + t - 1)
    shifted = relative_shift(scores)
    assert shifted.shape == (2, 3, t, s)
    for i in range(t):
        for j in range(s):
            # input column c holds distance s - 1 - c; the pair (i, j) is at s - t + i - j
            assert torch.equal(shifted[..., i, j], scores[..., i, j + t - 1 - i])


@pytest.mark.parametrize("path", ["fused", "reference"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("clamp_len", [0, 3])
def test_relative_attention_matches_the_paper_pair_by_pair(path, causal, clamp_len):
    """Every entry, above the diagonal too: with causal=False nothing hides a wrong score."""
    cfg = xl(path=path, clamp_len=clamp_len, memory=5, heads=2, width=16)
    layer = MemoryAttention(cfg, memory=5)
    for p in layer.parameters():  # zero-initialised biases would hide the u and v terms
        torch.nn.init.normal_(p, std=0.3)
    memory, x = torch.randn(2, 5, 16), torch.randn(2, 4, 16)
    state = layer.new_state(0)
    state.extend(memory)
    actual = layer(x, causal=causal, state=state)
    expected = relative_attention_reference(layer, memory, x, causal, layer.position.clamp)
    assert relative_error(actual, expected) < 1e-5


def test_clamp_defaults_to_the_largest_distance_training_sees():
    layer = MemoryAttention(xl(memory=5, context=8), memory=5).position
    assert layer.clamp == 5 + 8 - 1
    longest = layer.encodings(t=8, s=5 + 8)  # a full segment after a full memory
    assert torch.equal(longest[0], layer.sinusoids[layer.clamp + 12])  # distance 12, not clamped
    longer = layer.encodings(t=8, s=20 + 8)  # evaluating with memory 20
    assert torch.equal(longer[0], longest[0])


def test_memory_keeps_the_last_positions_of_memory_and_segment():
    memory = LayerMemory(3)
    a, b = torch.randn(1, 5, 4), torch.randn(1, 2, 4)
    memory.extend(a)
    assert torch.equal(memory.states, a[:, 2:])
    context = memory.extend(b)
    assert torch.equal(context, torch.cat((a[:, 2:], b), 1))
    assert torch.equal(memory.states, torch.cat((a[:, 4:], b), 1))
    empty = LayerMemory(0)
    empty.extend(a)
    assert empty.states.shape == (1, 0, 4)


def test_zero_memory_is_a_relative_transformer_on_each_segment():
    lm = LanguageModel(xl(memory=0)).eval()
    tokens = torch.randint(0, 40, (2, 24))
    state = lm.new_state()
    carried = by_segments(lm, tokens, 8, state)
    alone = torch.cat([lm(segment) for segment in tokens.split(8, dim=1)], dim=1)
    assert torch.equal(carried, alone)


def test_no_gradient_reaches_the_memory():
    lm = LanguageModel(xl())
    state = lm.new_state()
    first = torch.randn(2, 8, 32, requires_grad=True)
    second = torch.randn(2, 8, 32, requires_grad=True)
    lm.stack(first, causal=True, state=state)
    assert all(not layer.states.requires_grad for layer in state)
    lm.stack(second, causal=True, state=state).sum().backward()
    assert first.grad is None
    assert second.grad is not None and second.grad.abs().sum() > 0


@pytest.mark.parametrize("memory", [3, 8, 13])
def test_segments_with_memory_equal_one_pass_with_the_segment_window(memory, monkeypatch):
    """Segment by segment with memory M equals one pass over the whole text in which every
    layer's position p attends to [start of p's segment - M, p]. Exact at any depth: the
    memory of layer n holds the layer's inputs as that same pass computes them."""
    lm = LanguageModel(xl(memory=memory, depth=3)).eval()
    tokens = torch.randint(0, 40, (2, 20))
    segmented = by_segments(lm, tokens, 8, lm.new_state())  # segments of 8, 8, 4
    starts = [p - p % 8 for p in range(20)]
    whole = one_pass_with_window(lm, tokens, segment_window(starts, memory), monkeypatch)
    assert torch.allclose(segmented, whole, atol=1e-5)


def test_memory_as_long_as_the_text_equals_one_causal_pass():
    lm = LanguageModel(xl(memory=24)).eval()
    tokens = torch.randint(0, 40, (2, 24))
    assert torch.allclose(by_segments(lm, tokens, 8, lm.new_state()), lm(tokens), atol=1e-5)


def test_language_model_with_memory_is_causal():
    lm = LanguageModel(xl()).eval()
    first, second = torch.randint(0, 40, (2, 8)), torch.randint(0, 40, (2, 8))
    changed = second.clone()
    changed[:, 5:] = torch.randint(0, 40, (2, 3))
    outputs = []
    for segment in (second, changed):
        state = lm.new_state()
        lm(first, state)
        outputs.append(lm(segment, state))
    assert torch.allclose(outputs[0][:, :5], outputs[1][:, :5], atol=1e-6)
    assert not torch.allclose(outputs[0][:, 5:], outputs[1][:, 5:])


def test_round_trip_keeps_the_model_and_its_memory_settings(tmp_path):
    lm = LanguageModel(xl(memory=6, clamp_len=10)).eval()
    lm.save(tmp_path)
    loaded = attnlab.load(tmp_path)
    assert loaded.cfg == lm.cfg and loaded.cfg.position == "relative"
    tokens = torch.randint(0, 40, (2, 24))
    assert torch.equal(
        by_segments(loaded, tokens, 8, loaded.new_state()),
        by_segments(lm, tokens, 8, lm.new_state()),
    )


def test_evaluation_memory_can_be_longer_than_training():
    lm = LanguageModel(xl(memory=4)).eval()
    state = lm.new_state()
    state.size = 16
    by_segments(lm, torch.randint(0, 40, (1, 24)), 8, state)
    assert all(layer.states.shape[1] == 16 for layer in state)
    assert lm.stack.new_state(memory=16).size == 16


def test_generation_carries_the_memory_past_the_context(monkeypatch):
    """Greedy generation feeds the prompt in segments of `context`, then one token at a time;
    its tokens are the greedy choices of one pass with that segmentation's window."""
    lm = LanguageModel(xl(memory=6)).eval()
    prompt = torch.randint(0, 40, (2, 11))
    text = lm.generate(prompt, 29, temperature=0)
    assert text.shape == (2, 40)  # five times the context
    starts = [p - p % 8 for p in range(11)] + list(range(11, 40))
    logits = one_pass_with_window(lm, text, segment_window(starts, 6), monkeypatch)
    assert torch.equal(logits[:, 10:-1].argmax(-1), text[:, 11:])


def test_xl_refuses_another_attention_mechanism():
    with pytest.raises(ConfigError, match="--position relative needs attention that takes an"):
        LanguageModel(xl(attention="sparse"))


def test_memory_solves_a_copy_from_the_previous_segment():
    """Segment 2 repeats segment 1, random tokens: predicting the next token of segment 2
    needs segment 1, which only the memory holds. The trained model copies it; the same model
    with its memory emptied is at chance (1/16)."""
    torch.manual_seed(0)
    cfg = xl(vocab_size=16, context=8, memory=8, depth=1, width=32, heads=2)
    lm = LanguageModel(cfg)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-2)

    def copy_batch(b):
        first = torch.randint(0, 16, (b, 8))
        targets = F.pad(first[:, 1:], (0, 1), value=-100)  # segment 2's last target is unknown
        return first, targets

    for _ in range(80):
        first, targets = copy_batch(32)
        state = lm.new_state()
        with torch.no_grad():
            lm(first, state)
        loss, _ = lm.loss(first, targets, state=state)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    lm.eval()
    first, targets = copy_batch(256)
    for size, accurate in ((8, lambda a: a > 0.95), (0, lambda a: a < 0.2)):
        state = lm.new_state()
        state.size = size
        lm(first, state)
        guesses = lm(first, state)[:, :-1].argmax(-1)
        assert accurate((guesses == targets[:, :-1]).float().mean().item())


def test_classifier_with_relative_attention_ignores_padding():
    """Bidirectional use: the exact shift gives every pair its true distance both ways."""
    clf = attnlab.Classifier(xl(), num_classes=3).eval()
    texts = [torch.randint(1, 40, (n,)) for n in (3, 8, 6)]
    tokens = torch.zeros(3, 8, dtype=torch.long)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    for i, text in enumerate(texts):
        tokens[i, : len(text)], mask[i, : len(text)] = text, True
    batched = clf(tokens, mask)
    for i, text in enumerate(texts):
        assert torch.allclose(batched[i], clf(text[None])[0], atol=1e-5)
