"""The one attention interface every mechanism shares.

A mechanism is split in two parts:

- `MultiHeadAttention` does what all of them have in common: project the input to
  queries, keys and values, split into heads, apply rotary positions, append to the
  key/value cache, and unify the heads again with a linear map (Vaswani et al. 2017, eq. 5).
- An *attention core* does the one thing they differ in: turn per-head queries, keys and
  values into per-head outputs. Cores register themselves by name (`@register_core`), so a
  new mechanism is one new file and `--attention NAME` finds it.

Core call signature (all shapes per head, queries aligned with the *last* T keys):

    core(q, k, v, *, key_mask, causal, bias) -> out
      q: (b, h, t, d)   k, v: (b, h, s, d) with s >= t (s > t when a cache holds earlier keys)
      key_mask: (b, s) bool, True for real tokens, or None
      causal: query i (absolute position s - t + i) sees keys j <= s - t + i only
      bias: (h, t, s) float added to the scores (ALiBi), or None
      out: (b, h, t, d)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..positions import Rotary, alibi_bias
from ..registry import Registry
from .cache import KVCache

CORES = Registry()
register_core = CORES.register  # class decorator: make a core available as `--attention NAME`


def allowed_mask(
    key_mask: Tensor | None, causal: bool, t: int, s: int, device: torch.device
) -> Tensor | None:
    """Boolean (b or 1, 1, t, s) mask of the key positions each query may see, or None.

    Every query may always see its own position, so no row is ever all masked (a padded
    query under a causal mask would otherwise get a softmax over nothing: NaN). Real queries
    are unaffected, since their own key is real and never in their future.
    """
    if key_mask is None and not causal:
        return None
    rows = torch.arange(s - t, s, device=device)[:, None]  # absolute query positions
    cols = torch.arange(s, device=device)[None, :]
    allowed = cols <= rows if causal else torch.ones(t, s, dtype=torch.bool, device=device)
    allowed = allowed[None, None]  # (1, 1, t, s)
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :].bool()
    return allowed | (cols == rows)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention around a pluggable core.

    `head_mode="narrow"` splits the width into `heads` chunks of width/heads; `"wide"` gives
    every head the full width and unifies the heads·width outputs with one linear map
    (the two forms of "Transformers from scratch").
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        inner = self.heads * self.head_dim
        self.to_qkv = nn.Linear(cfg.width, 3 * inner, bias=cfg.bias)  # fused q, k, v
        self.unify_heads = nn.Linear(inner, cfg.width, bias=cfg.bias)
        self.core = CORES[cfg.attention](cfg)
        self.rotary = Rotary(self.head_dim, cfg.context) if cfg.position == "rope" else None
        self.alibi = cfg.position == "alibi"

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
    ) -> Tensor:
        b, t, _ = x.shape
        h, d = self.heads, self.head_dim
        q, k, v = self.to_qkv(x).view(b, t, 3, h, d).permute(2, 0, 3, 1, 4)  # 3 × (b, h, t, d)
        start = cache.length if cache is not None else 0
        if self.rotary is not None:
            q, k = self.rotary(q, start), self.rotary(k, start)
        if cache is not None:
            k, v = cache.append(k, v)  # (b, h, s, d), s = start + t
            if mask is not None and mask.shape[1] != k.shape[2]:
                raise ValueError("a padding mask with a cache must cover the cached keys too")
        s = k.shape[2]
        bias = alibi_bias(h, t, s, causal, x.device) if self.alibi else None
        out = self.core(q, k, v, key_mask=mask, causal=causal, bias=bias)  # (b, h, t, d)
        return self.unify_heads(out.transpose(1, 2).reshape(b, t, h * d))


def softmax_scale(d: int) -> float:
    return 1.0 / math.sqrt(d)
