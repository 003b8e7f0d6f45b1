import pytest
import torch

from attnlab import ModelConfig
from attnlab.attention.sparse import SparseAttention
from attnlab.config import ConfigError
from tests.reference import allowed_positions, relative_error, softmax_attention

PATTERNS = ["strided", "fixed", "local"]
# (n, l, c): n not divisible by l, several blocks; n a multiple of l; a single padded block.
SHAPES = [(37, 4, 2), (24, 8, 3), (10, 16, 4)]


def core(pattern, block, summary=2):
    options = {"pattern": pattern, "block": block, "summary": summary}
    return SparseAttention(ModelConfig(attention="sparse", options={"sparse": options}))


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


def test_a_position_encoding_that_biases_scores_is_refused():
    with pytest.raises(ConfigError, match="--position alibi needs attention that takes an"):
        ModelConfig(attention="sparse", position="alibi")
