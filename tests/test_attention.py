"""Dense and basic attention against their equations; what the conformance suite does not say
(the head layout, the written-out weights)."""

import pytest
import torch

from attnlab import ModelConfig
from attnlab.attention import KVCache, MultiHeadAttention
from tests.reference import allowed_positions, multi_head_attention, relative_error


def config(**overrides):
    base = dict(vocab_size=50, context=16, depth=1, width=32, heads=4, position="none")
    return ModelConfig(**{**base, **overrides})


def random_key_mask(b, t):
    lengths = torch.randint(1, t + 1, (b,))
    return torch.arange(t)[None, :] < lengths[:, None]


@pytest.mark.parametrize("path", ["fused", "reference"])
@pytest.mark.parametrize("head_mode", ["narrow", "wide"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_matches_float64_equation(path, head_mode, causal, masked):
    layer = MultiHeadAttention(config(options={"dense": {"path": path}}, head_mode=head_mode))
    x = torch.randn(3, 11, 32)
    mask = random_key_mask(3, 11) if masked else None
    expected = multi_head_attention(layer, x, causal=causal, key_mask=mask)
    actual = layer(x, mask=mask, causal=causal)
    assert relative_error(actual, expected) < 1e-5


def test_wide_heads_see_the_full_width():
    narrow = MultiHeadAttention(config(head_mode="narrow"))
    wide = MultiHeadAttention(config(head_mode="wide"))
    assert narrow.head_dim == 32 // 4 and wide.head_dim == 32
    assert wide.to_qkv.weight.shape == (3 * 4 * 32, 32)
    assert wide.unify_heads.weight.shape == (32, 4 * 32)


def basic_layer() -> MultiHeadAttention:
    return MultiHeadAttention(config(attention="basic", width=5, heads=1))


def test_basic_self_attention_is_the_seed_equation():
    x = torch.randn(2, 7, 5)
    y = basic_layer()(x)
    x64 = x.double()
    for n in range(2):
        for i in range(7):
            weights = torch.softmax(torch.stack([x64[n, i] @ x64[n, j] for j in range(7)]), 0)
            expected = sum(weights[j] * x64[n, j] for j in range(7))
            assert relative_error(y[n, i], expected) < 1e-5


def test_basic_self_attention_has_no_parameters_and_respects_masks():
    layer = basic_layer()
    assert not list(layer.parameters())
    x = torch.randn(1, 6, 5)[:, None]  # (b, 1, t, width): the input is its own q, k, v
    weights = layer.core.weights(x, x, causal=True)
    assert torch.equal(weights[0, 0] > 0, allowed_positions(6, 6, causal=True))


def test_reference_path_weights_sum_to_one_and_hide_the_future():
    layer = MultiHeadAttention(config(options={"dense": {"path": "reference"}}))
    q, k = torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8)
    weights = layer.core.weights(q, k, causal=True)
    assert weights.shape == (2, 4, 9, 9)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 9))
    assert torch.all(weights.triu(1) == 0)


def test_unmasked_attention_without_positions_is_permutation_equivariant():
    layer = MultiHeadAttention(config())
    x = torch.randn(2, 10, 32)
    perm = torch.randperm(10)
    assert torch.allclose(layer(x)[:, perm], layer(x[:, perm]), atol=1e-6)


@pytest.mark.parametrize("path", ["fused", "reference"])
@pytest.mark.parametrize("position", ["rope", "alibi", "relative"])
def test_cached_attention_with_positions_equals_full_attention(path, position):
    layer = MultiHeadAttention(config(options={"dense": {"path": path}}, position=position))
    x = torch.randn(2, 12, 32)
    full = layer(x, causal=True)
    state = layer.new_state(16)
    pieces = [layer(x[:, :5], causal=True, state=state)]
    pieces += [layer(x[:, i : i + 1], causal=True, state=state) for i in range(5, 12)]
    assert torch.allclose(torch.cat(pieces, 1), full, atol=1e-5)


def test_cache_is_a_preallocated_buffer():
    cache = KVCache(8)
    k = torch.randn(1, 2, 3, 4)
    cache.append(k, k)
    buffer = cache.keys
    cache.append(k[:, :, :1], k[:, :, :1])
    assert cache.keys is buffer and cache.length == 4
    with pytest.raises(ValueError):
        cache.append(torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4))
