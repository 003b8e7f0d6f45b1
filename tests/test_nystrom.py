import pytest
import torch

from attnlab import Classifier, LanguageModel, ModelConfig
from attnlab.attention.nystrom import NystromAttention, segment_means
from attnlab.config import ConfigError
from tests.reference import relative_error, softmax_attention


def core(landmarks, conv=0, iterations=6, heads=2):
    options = {"landmarks": landmarks, "conv": conv, "pinv_iterations": iterations}
    cfg = ModelConfig(heads=heads, attention="nystrom", options={"nystrom": options})
    return NystromAttention(cfg).double()


def exact(q, k, v):
    """softmax(QKᵀ/√d)V head by head, in float64: (b, h, n, d)."""
    out = torch.empty_like(v, dtype=torch.float64)
    for batch in range(q.shape[0]):
        for head in range(q.shape[1]):
            out[batch, head] = softmax_attention(q[batch, head], k[batch, head], v[batch, head])
    return out


def random_qkv(b, h, n, d, scale=1.0, dtype=torch.float64):
    q, k, v = (torch.randn(b, h, n, d, dtype=dtype) for _ in range(3))
    return q * scale, k * scale, v


def test_with_a_landmark_per_token_nystrom_is_softmax_attention():
    """With m = n every landmark is one query or key, so Ŝ = S A⁺ S with A = S, and Ŝ = S
    exactly if A⁺ is exact. What is left is the iteration's error: 6 iterations (the paper's
    count) bring a 16 × 16 softmax kernel within 3% in relative norm (it is ill-conditioned:
    rows of a softmax are all alike where scores are flat); 30 iterations reach 1e-8."""
    q, k, v = random_qkv(2, 2, 16, 8, scale=2.0)
    expected = exact(q, k, v)
    assert relative_error(core(16)(q, k, v), expected) < 3e-2
    assert relative_error(core(16, iterations=30)(q, k, v), expected) < 1e-8


def test_error_against_exact_attention_falls_as_landmarks_grow():
    """With the paper's 6 iterations. (Many more iterations make m < n worse, not better: the
    exact inverse of an ill-conditioned landmark kernel has huge entries, and the few
    iterations act as a regulariser.)"""
    q, k, v = random_qkv(1, 4, 64, 16)
    expected = exact(q, k, v)
    errors = [relative_error(core(m)(q, k, v), expected) for m in (2, 8, 32, 64)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.1


def test_landmarks_are_means_of_the_real_tokens_only():
    x = torch.randn(2, 1, 12, 3, dtype=torch.float64)
    real = torch.ones(2, 12, dtype=torch.bool)
    real[1, 8:] = False  # the second sequence has 8 real tokens
    means, present = segment_means(x, real, 4)
    for segment in range(4):
        assert torch.allclose(means[0, 0, segment], x[0, 0, 3 * segment : 3 * segment + 3].mean(0))
        assert torch.allclose(means[1, 0, segment], x[1, 0, 2 * segment : 2 * segment + 2].mean(0))
    assert present.all()


def test_padding_never_changes_a_sequences_output_with_fewer_tokens_than_landmarks():
    lengths = [50, 64, 5]  # not divisible by m; no padding; fewer tokens than landmarks
    q, k, v = random_qkv(3, 2, 64, 8)
    key_mask = torch.arange(64)[None, :] < torch.tensor(lengths)[:, None]
    attention = core(8, conv=5)
    batched = attention(q, k, v, key_mask=key_mask)
    for i, n in enumerate(lengths):
        alone = attention(*(x[i : i + 1, :, :n] for x in (q, k, v)))
        assert relative_error(batched[i, :, :n], alone[0]) < 1e-10


def test_one_sequence_never_changes_anothers_output():
    """The pseudo-inverse's initial scale is per matrix: a sequence with very different
    scores in the same batch leaves the first one's result as it was alone."""
    q, k, v = random_qkv(2, 2, 32, 8)
    q[1], k[1] = q[1] * 10, k[1] * 10
    attention = core(8)
    assert relative_error(attention(q, k, v)[0], attention(q[:1], k[:1], v[:1])[0]) < 1e-12


def test_half_precision_inputs_are_attended_in_float32():
    attention = core(8).float()
    q, k, v = (x.bfloat16() for x in random_qkv(1, 2, 32, 8, dtype=torch.float32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q, k, v)
    assert out.dtype == torch.bfloat16
    expected = attention(q.float(), k.float(), v.float()).bfloat16()
    assert torch.equal(out, expected)


def test_a_language_model_is_refused_with_a_clear_message():
    with pytest.raises(ConfigError, match="a language model needs attention that can be causal"):
        LanguageModel(ModelConfig(attention="nystrom"))


def test_classifier_with_nystrom_attention_trains():
    options = {"nystrom": {"landmarks": 4, "conv": 3}}
    cfg = ModelConfig(vocab_size=30, context=24, depth=2, width=32, heads=4, attention="nystrom",
                      options=options)  # fmt: skip
    clf = Classifier(cfg, num_classes=2)
    tokens = torch.randint(0, 30, (8, 24))
    mask = torch.arange(24)[None, :] < torch.randint(6, 25, (8, 1))
    labels = torch.randint(0, 2, (8,))
    optimizer = torch.optim.AdamW(clf.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss, _ = clf.loss(tokens, mask, labels)
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in clf.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
