"""Dense (full) attention: every query against every key, softmax(QKᵀ/√d + bias)V
(Vaswani et al. 2017, eq. 1).

Two execution paths compute the same thing:

- ``fused`` (default) calls `torch.nn.functional.scaled_dot_product_attention`, which picks
  a flash or memory-efficient kernel when it can and never materialises the weights;
- ``reference`` writes the equation out, step by step, for reading next to the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import ModelConfig, option
from ..registry import ATTENTION
from .base import Core, allowed_mask, softmax_scale


def masked_scores(
    q: Tensor, k: Tensor, scale: float, key_mask: Tensor | None, causal: bool, bias: Tensor | None
) -> Tensor:
    """(b, h, t, s) scores q·k·scale + bias, -inf where a query may not look."""
    scores = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        scores = scores + bias
    mask = allowed_mask(key_mask, causal, q.shape[2], k.shape[2], q.device)
    return scores if mask is None else scores.masked_fill(~mask, float("-inf"))


@ATTENTION.register("dense")
class DenseAttention(Core):
    """softmax(QKᵀ/√d + bias)V over every key (Vaswani et al. 2017)."""

    provides = frozenset({"causal", "cache", "bias", "qk", "cross"})

    @dataclass
    class Options:
        path: str = option(
            "fused",
            "fused kernel (scaled_dot_product_attention) or the equation written out",
            choices=("fused", "reference"),
        )

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.path = cfg.options_for(self).path
        self.dropout = cfg.dropout

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
        t, s = q.shape[2], k.shape[2]
        causal = causal and t > 1  # a lone last query sees every key anyway
        p = self.dropout if self.training else 0.0
        if self.path == "reference":
            weights = self.weights(q, k, key_mask=key_mask, causal=causal, bias=bias)
            return F.dropout(weights, p) @ v
        if key_mask is None and bias is None and (not causal or t == s):
            # The plain cases go to the flash kernel, which wants no explicit mask.
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        mask = allowed_mask(key_mask, causal, t, s, q.device)
        if bias is not None:
            bias = bias.to(q.dtype)
            mask = bias if mask is None else bias.masked_fill(~mask, torch.finfo(q.dtype).min)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)

    def weights(self, q, k, *, key_mask=None, causal=False, bias=None) -> Tensor:
        scale = softmax_scale(q.shape[-1])
        return masked_scores(q, k, scale, key_mask, causal, bias).softmax(dim=-1)

    @classmethod
    def bench_kinds(cls, n: int) -> dict[str, dict[str, Any]]:
        return {"dense-reference": {"path": "reference"}, "dense": {}}

    @classmethod
    def keys_per_query(cls, options: Any, n: int) -> int:
        return n if options.path == "reference" else 0
