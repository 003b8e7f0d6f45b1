"""Multi-head attention around a pluggable core (Vaswani et al. 2017, eq. 4-5).

The layer projects its input to queries, keys and values, splits them into heads, lets the
position encoding act on them (rotary positions, ALiBi or relative-position biases), hands
them to the core, and unifies the heads again with a linear map. Keys and values come from the
input itself (self-attention) or from a `context` (cross-attention over an encoder's output,
a memory of earlier segments).

`head_mode="narrow"` splits the width into `heads` chunks of width/heads; `"wide"` gives every
head the full width and unifies the heads·width outputs with one linear map (the two forms of
"Transformers from scratch"). A `parameter_free` core (basic) attends over the input itself:
one head, no projections.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..positions import build_position
from ..registry import ATTENTION
from .dconv import CausalDepthwiseConv, ConvState


class ValueResidual:
    """The value residual of ResFormer (Zhou et al. 2024, eq. 5), carried through one forward
    pass of a stack: the first layer's values V_1 are kept, and every later layer n attends
    over λ_n·V_n + μ_n·V_1 instead of V_n, with learned λ_n and μ_n (one pair per layer, the
    stack's `value_keep` and `value_first`, both starting at 0.5). Later layers so keep
    access to the token-level information the first layer's values carry."""

    def __init__(self, keep: Tensor, first: Tensor):
        self.keep, self.first = keep, first  # (depth - 1,) each
        self.first_values: Tensor | None = None
        self.layer = 0

    def mix(self, v: Tensor) -> Tensor:
        if self.first_values is None:
            self.first_values = v
            return v
        n, self.layer = self.layer, self.layer + 1
        return self.keep[n] * v + self.first[n] * self.first_values


class MultiHeadAttention(nn.Module):
    """x (b, t, width) -> (b, t, width).

    `separate_kv`: project queries and keys/values with two maps (`to_q`, `to_kv`), for
    attention over a context other than the input; otherwise one fused map (`to_qkv`).
    `positions`: whether the model's position encoding acts here (not in cross-attention,
    whose keys belong to another sequence).
    """

    def __init__(self, cfg: ModelConfig, *, separate_kv: bool = False, positions: bool = True):
        super().__init__()
        self.core = ATTENTION[cfg.attention](cfg)
        self.position = build_position(cfg, "attention") if positions else None
        self.qkv_conv = None
        self.qk_norm = cfg.qk_norm
        if self.core.parameter_free:
            self.heads, self.head_dim = 1, cfg.width
            return
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        inner = self.heads * self.head_dim
        if cfg.qkv_conv and not separate_kv:  # self-attention: q, k, v of the input's positions
            self.qkv_conv = CausalDepthwiseConv(3 * inner, cfg.qkv_conv)
        if separate_kv:
            self.to_q = nn.Linear(cfg.width, inner, bias=cfg.bias)
            self.to_kv = nn.Linear(cfg.width, 2 * inner, bias=cfg.bias)
        else:
            self.to_qkv = nn.Linear(cfg.width, 3 * inner, bias=cfg.bias)  # fused q, k, v
        self.unify_heads = nn.Linear(inner, cfg.width, bias=cfg.bias)

    def project(
        self, x: Tensor, context: Tensor | None, state: Any = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-head queries (b, h, t, d) from x; keys and values (b, h, s, d) from the
        context (default: x)."""
        b, t, _ = x.shape
        h, d = self.heads, self.head_dim
        if self.core.parameter_free:
            q = x[:, None]  # (b, 1, t, width)
            kv = q if context is None else context[:, None]
            return q, kv, kv
        if hasattr(self, "to_qkv") and context is None:
            qkv = self.to_qkv(x)  # (b, t, 3·h·d)
            if isinstance(state, ConvState):  # Primer's convolution, after earlier calls
                qkv = state.convolve(self.qkv_conv, qkv)
            elif self.qkv_conv is not None:
                qkv = self.qkv_conv(qkv)
            q, k, v = qkv.view(b, t, 3, h, d).permute(2, 0, 3, 1, 4)
            return q, k, v
        context = x if context is None else context
        s = context.shape[1]
        q = self.to_q(x).view(b, t, h, d).transpose(1, 2)
        k, v = self.to_kv(context).view(b, s, 2, h, d).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(
        self,
        x: Tensor,
        *,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        causal: bool = False,
        state: Any = None,
        values: ValueResidual | None = None,
    ) -> Tensor:
        """`mask` (b, s) marks the real keys (of the cached ones too); `state` is what
        `new_state` gave, holding the keys of earlier calls; `values` mixes in the first
        layer's values."""
        b, t, _ = x.shape
        q, k, v = self.project(x, context, state)
        if values is not None:
            v = values.mix(v)
        if isinstance(state, ConvState):
            state = state.inner
        if self.qk_norm:  # unit RMS per head: bounded scores (ViT-22B, Dehghani et al. 2023)
            q, k = F.rms_norm(q, (q.shape[-1],)), F.rms_norm(k, (k.shape[-1],))
        bias = None
        if self.position is not None:
            start = state.length if state is not None else 0  # position of the first query
            bias = self.position.bias(q, t, start + k.shape[2])
            q, k = self.position.queries_keys(q, k, start)
        out = self.core(q, k, v, key_mask=mask, causal=causal, bias=bias, state=state)
        if self.core.parameter_free:
            return out[:, 0]
        return self.unify_heads(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))

    def new_state(self, capacity: int) -> Any:
        """The core's incremental state (with the convolution's inputs), or None if it keeps
        none."""
        state = self.core.new_state(capacity)
        if state is not None and self.qkv_conv is not None:
            state = ConvState(state, self.qkv_conv.kernel)
        return state
