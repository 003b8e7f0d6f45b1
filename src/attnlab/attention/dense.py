"""Dense (full) attention: every query against every key.

Two execution paths compute the same thing, softmax(QKᵀ/√d + bias)V (Vaswani et al. 2017,
eq. 1):

- ``fused`` (default) calls `torch.nn.functional.scaled_dot_product_attention`, which picks
  a flash or memory-efficient kernel when it can and never materialises the weights;
- ``reference`` writes the equation out and keeps the weights in `.weights` for teaching
  and visualisation.

`BasicSelfAttention` is the parameter-free starting point of "Transformers from scratch":
y_i = Σ_j softmax_j(x_i·x_j) x_j.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from .base import allowed_mask, register_core, softmax_scale


@register_core("dense")
class DenseAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.path = cfg.attention_path
        self.dropout = cfg.dropout
        self.weights: Tensor | None = None  # (b, h, t, s), reference path only

    def forward(
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
        if self.path == "fused":
            if key_mask is None and bias is None and (not causal or t == s):
                # The plain cases go to the flash kernel, which wants no explicit mask.
                return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
            mask = allowed_mask(key_mask, causal, t, s, q.device)
            if bias is not None:
                neg_inf = torch.finfo(q.dtype).min
                mask = (
                    bias.to(q.dtype)
                    if mask is None
                    else bias.to(q.dtype).masked_fill(~mask, neg_inf)
                )
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        scores = (q @ k.transpose(-2, -1)) * softmax_scale(q.shape[-1])  # (b, h, t, s)
        if bias is not None:
            scores = scores + bias
        mask = allowed_mask(key_mask, causal, t, s, q.device)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        self.weights = weights.detach()
        return F.dropout(weights, p) @ v


class BasicSelfAttention(nn.Module):
    """y_i = Σ_j softmax_j(x_i·x_j) x_j: no parameters, no heads, no scaling.

    It takes the same inputs as every other mechanism, so it can stand in any model.
    """

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.weights: Tensor | None = None

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        cache=None,
    ) -> Tensor:
        if cache is not None:
            raise ValueError("basic self-attention keeps no cache")
        t = x.shape[1]
        scores = x @ x.transpose(1, 2)  # (b, t, t): raw dot products x_i·x_j
        allowed = allowed_mask(mask, causal, t, t, x.device)
        if allowed is not None:
            scores = scores.masked_fill(~allowed[:, 0], float("-inf"))
        self.weights = scores.softmax(dim=-1)
        return self.weights @ x
