import pytest
import torch

from attnlab import LanguageModel, ModelConfig
from attnlab.attention import KVCache, build_attention
from attnlab.attention.sparse import SparseAttention
from tests.reference import allowed_positions, relative_error, softmax_attention

PATTERNS = ["strided", "fixed", "local"]
# (n, l, c): n not divisible by l, several blocks; n a multiple of l; a single padded block.
SHAPES = [(37, 4, 2), (24, 8, 3), (10, 16, 4)]


def core(pattern, block, summary=2):
    cfg = ModelConfig(sparse_pattern=pattern, sparse_block=block, sparse_summary=summary)
    return SparseAttention(cfg)


def pattern_by_definition(pattern, n, l, c, causal, key_mask=None):
    """(n, n) bool from Child et al. 2019, §4.2, pair by pair; a query always sees itself."""
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            if pattern == "fixed":
                first = j // l == i // l
                second = j % l in range(l - c, l)  # {t, ..., l} with t = l − c
            else:
                first = abs(i - j) <= l  # causal: {max(0, i − l), ..., i}
                second = pattern == "strided" and (i - j) % l == 0
            future = causal and j > i
            padded = key_mask is not None and not key_mask[j]
            allowed[i, j] = (first or second) and not future and not padded
        allowed[i, i] = True
    return allowed


def random_qkv(b, h, n, d, dtype=torch.float64):
    return (torch.randn(b, h, n, d, dtype=dtype) for _ in range(3))


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n, l, c", SHAPES)
def test_each_query_sees_exactly_the_positions_of_its_pattern(pattern, causal, n, l, c):
    q, k, _ = random_qkv(2, 3, n, 8)
    eye = torch.eye(n, dtype=torch.float64).expand(2, 3, n, n)  # output row i = weights of i
    key_mask = torch.rand(2, n) > 0.3
    weights = core(pattern, l, c)(q, k, eye, key_mask=key_mask, causal=causal)
    for batch in range(2):
        allowed = pattern_by_definition(pattern, n, l, c, causal, key_mask[batch])
        assert torch.equal(weights[batch] > 0, allowed.expand(3, n, n))
        for head in range(3):
            expected = softmax_attention(q[batch, head], k[batch, head], eye[0, 0], allowed)
            assert relative_error(weights[batch, head], expected) < 1e-12


@pytest.mark.parametrize(
    "pattern, block",
    [("strided", 1), ("strided", 40), ("fixed", 40), ("local", 40), ("fixed", 64)],
)
@pytest.mark.parametrize("causal", [False, True])
def test_a_pattern_that_covers_every_pair_equals_dense_attention(pattern, block, causal):
    q, k, v = random_qkv(2, 2, 37, 8)
    out = core(pattern, block)(q, k, v, causal=causal)
    allowed = allowed_positions(37, 37, causal)
    for batch in range(2):
        for head in range(2):
            expected = softmax_attention(q[batch, head], k[batch, head], v[batch, head], allowed)
            assert relative_error(out[batch, head], expected) < 1e-12


@pytest.mark.parametrize("pattern", PATTERNS)
def test_causal_patterns_never_see_the_future(pattern):
    q, k, v = random_qkv(1, 2, 30, 8, torch.float32)
    changed_k, changed_v = k.clone(), v.clone()
    changed_k[:, :, 17:] = torch.randn(1, 2, 13, 8)
    changed_v[:, :, 17:] = torch.randn(1, 2, 13, 8)
    attention = core(pattern, 4)
    before = attention(q, k, v, causal=True)
    after = attention(q, changed_k, changed_v, causal=True)
    assert torch.equal(before[:, :, :17], after[:, :, :17])
    assert not torch.allclose(before[:, :, 17:], after[:, :, 17:])


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("causal", [False, True])
def test_padding_never_changes_a_sequences_output(pattern, causal):
    lengths = [6, 29, 17]
    q, k, v = random_qkv(3, 2, 29, 8, torch.float32)
    key_mask = torch.arange(29)[None, :] < torch.tensor(lengths)[:, None]
    attention = core(pattern, 4)
    batched = attention(q, k, v, key_mask=key_mask, causal=causal)
    for i, n in enumerate(lengths):
        alone = attention(*(x[i : i + 1, :, :n] for x in (q, k, v)), causal=causal)
        assert torch.allclose(batched[i, :, :n], alone[0], atol=1e-6)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("position", ["none", "rope"])
def test_cached_attention_equals_full_attention(pattern, position):
    cfg = dict(attention="sparse", sparse_pattern=pattern, sparse_block=3, sparse_summary=1)
    layer = build_attention(
        ModelConfig(vocab_size=50, context=16, depth=1, width=32, heads=4, position=position, **cfg)
    )
    x = torch.randn(2, 14, 32)
    full = layer(x, causal=True)
    cache = KVCache(16)
    pieces = [layer(x[:, :5], causal=True, cache=cache)]
    pieces += [layer(x[:, i : i + 1], causal=True, cache=cache) for i in range(5, 14)]
    assert torch.allclose(torch.cat(pieces, 1), full, atol=1e-5)


def small_lm(pattern, context=16):
    cfg = ModelConfig(
        vocab_size=40,
        context=context,
        depth=2,
        width=32,
        heads=4,
        attention="sparse",
        sparse_pattern=pattern,
        sparse_block=4,
        sparse_summary=2,
    )
    return LanguageModel(cfg).eval()


@pytest.mark.parametrize("pattern", PATTERNS)
def test_language_model_with_sparse_attention_is_causal(pattern):
    lm = small_lm(pattern)
    tokens = torch.randint(0, 40, (2, 16))
    changed = tokens.clone()
    changed[:, 9:] = torch.randint(0, 40, (2, 7))
    assert torch.allclose(lm(tokens)[:, :9], lm(changed)[:, :9], atol=1e-6)
    assert not torch.allclose(lm(tokens)[:, 9:], lm(changed)[:, 9:])


@pytest.mark.parametrize("pattern", PATTERNS)
def test_cached_generation_equals_uncached_generation(pattern):
    lm = small_lm(pattern, context=12)
    prompt = torch.randint(0, 40, (2, 5))
    cached = lm.generate(prompt, 20, temperature=0)  # past the context: the window jumps
    assert torch.equal(cached, lm.generate(prompt, 20, temperature=0, use_cache=False))


def test_a_score_bias_is_refused():
    q, k, v = random_qkv(1, 2, 8, 4, torch.float32)
    with pytest.raises(ValueError, match="no score bias"):
        core("strided", 4)(q, k, v, bias=torch.zeros(2, 8, 8))
