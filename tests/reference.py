"""Plain float64 versions of the equations, written for clarity, not speed (loops welcome)."""

import math

import torch


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """‖actual − expected‖ / ‖expected‖, computed in float64."""
    actual, expected = actual.double(), expected.double()
    return ((actual - expected).norm() / expected.norm()).item()


def softmax_attention(q, k, v, allowed=None, bias=None):
    """softmax(q kᵀ / √d + bias) v for one head; q (t, d), k and v (s, d), allowed (t, s)."""
    q, k, v = q.double(), k.double(), v.double()
    scores = q @ k.T / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias.double()
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def allowed_positions(t, s, causal, key_mask=None):
    """(t, s) bool for queries at the last t of s positions; a query that may see no key at
    all (a padded one under a causal mask) sees itself."""
    allowed = torch.ones(t, s, dtype=torch.bool)
    for i in range(t):
        position = s - t + i
        for j in range(s):
            if causal and j > position:
                allowed[i, j] = False
            if key_mask is not None and not key_mask[j]:
                allowed[i, j] = False
        if not allowed[i].any():
            allowed[i, position] = True
    return allowed


def rms_normalised(x):
    """x / sqrt(mean(x²)) over the last axis (no gain)."""
    return x / torch.sqrt((x.double() ** 2).mean(-1, keepdim=True))


def multi_head_attention(layer, x, causal=False, key_mask=None, qk_norm=False):
    """Vaswani et al. 2017, eq. 4-5, from a MultiHeadAttention's own weights, head by head;
    `qk_norm`: each head's queries and keys RMS-normalised first (Dehghani et al. 2023)."""
    b, t, _ = x.shape
    h, d = layer.heads, layer.head_dim
    w_qkv = layer.to_qkv.weight.double()
    b_qkv = layer.to_qkv.bias.double() if layer.to_qkv.bias is not None else 0
    qkv = x.double() @ w_qkv.T + b_qkv  # (b, t, 3·h·d)
    out = torch.zeros(b, t, h * d, dtype=torch.float64)
    for n in range(b):
        allowed = allowed_positions(t, t, causal, None if key_mask is None else key_mask[n])
        for head in range(h):
            q = qkv[n, :, head * d : (head + 1) * d]
            k = qkv[n, :, h * d + head * d : h * d + (head + 1) * d]
            v = qkv[n, :, 2 * h * d + head * d : 2 * h * d + (head + 1) * d]
            if qk_norm:
                q, k = rms_normalised(q), rms_normalised(k)
            out[n, :, head * d : (head + 1) * d] = softmax_attention(q, k, v, allowed)
    w_o = layer.unify_heads.weight.double()
    b_o = layer.unify_heads.bias.double() if layer.unify_heads.bias is not None else 0
    return out @ w_o.T + b_o


def assert_causal(model, vocab: int, length: int = 20, at: int = 12) -> None:
    """Changing the token at `at` changes a language model's outputs from there on, and none
    before it."""
    tokens = torch.randint(0, vocab, (2, length))
    changed = tokens.clone()
    changed[:, at] = (changed[:, at] + 1) % vocab
    before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :at], after[:, :at])
    assert not torch.allclose(before[:, at:], after[:, at:])
