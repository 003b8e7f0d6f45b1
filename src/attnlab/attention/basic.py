"""The parameter-free self-attention that "Transformers from scratch" starts from:

    y_i = Σ_j softmax_j(x_i·x_j) x_j

No projections, no heads, no scaling: the input is its own queries, keys and values. It takes
the same inputs as every other core, so it can stand in any model (and keeps a cache)."""

from __future__ import annotations

from torch import Tensor

from ..registry import ATTENTION
from .base import Core
from .dense import masked_scores


@ATTENTION.register("basic")
class BasicSelfAttention(Core):
    """y_i = Σ_j softmax(x_i·x_j) x_j, no parameters ("Transformers from scratch")."""

    provides = frozenset({"causal", "cache", "cross"})
    parameter_free = True

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        key_mask: Tensor | None = None,
        causal: bool = False,
        bias: Tensor | None = None,
    ) -> Tensor:
        return self.weights(q, k, key_mask=key_mask, causal=causal) @ v

    def weights(self, q, k, *, key_mask=None, causal=False, bias=None) -> Tensor:
        return masked_scores(q, k, 1.0, key_mask, causal, None).softmax(dim=-1)
