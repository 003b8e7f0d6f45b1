"""Relative-position attention with a segment memory (Transformer-XL, Dai et al. 2019, §3.3).

The queries come from the current segment; keys and values from the memory of earlier
segments followed by the segment itself. The score of query i and key j depends on their
distance r = i - j (positions counted over memory + segment), never on where they sit:

    A_ij = q_iᵀk_j + q_iᵀW_R R_r + uᵀk_j + vᵀW_R R_r                         (§3.3)
         = (q_i + u)ᵀ k_j  +  (q_i + v)ᵀ W_R R_r
           content terms (a)+(c)   position terms (b)+(d)

R_r is the sinusoid of distance r, W_R a learned map (the paper's W_{k,R}) and u, v two learned
vectors per head shared by every position.

The position terms are computed once per distance, not once per pair: (q_i + v)ᵀ W_R R_r for
every query and every distance, then moved into (query, key) layout by `relative_shift`.
The paper's shift leaves entries above the diagonal filled with scores of the wrong distance,
hidden only by the causal mask. Here the distances run over every value a pair can have,
s - 1 down to -(t - 1), so each entry is exact and the layer is also correct without a causal
mask (a bidirectional classifier).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError, ModelConfig
from ..positions import sinusoidal_table
from .base import softmax_scale
from .dense import DenseAttention


def relative_shift(scores: Tensor) -> Tensor:
    """(…, t, s + t - 1) scores by distance -> (…, t, s) scores by key.

    Column c of the input holds distance s - 1 - c; query i sits at position s - t + i, so its
    key j is at distance s - t + i - j, i.e. in input column j + t - 1 - i. Padding one zero
    column in front and reading the rows back with a length one shorter moves row i left by
    t - 1 - i columns, the shift each row needs, with no loop and no gather.
    """
    *batch, t, length = scores.shape
    s = length - t + 1
    padded = F.pad(scores, (1, 0))  # (…, t, length + 1)
    shifted = padded.view(*batch, length + 1, t)[..., 1:, :]  # drop the first `t` entries
    return shifted.reshape(*batch, t, length)[..., :s]  # (…, t, s)


class LayerMemory:
    """The hidden states one layer saw in earlier segments: at most `size` positions, detached,
    so no gradient flows into an earlier segment (Dai et al. 2019, §3.2: SG(·) in h̃)."""

    def __init__(self, size: int):
        self.size = size
        self.states: Tensor | None = None  # (b, m, width), m <= size
        self.seen = 0

    def extend(self, x: Tensor) -> Tensor:
        """Memory followed by the segment x (b, t, width) -> (b, m + t, width); then keep the
        last `size` of those positions as the memory for the next segment."""
        context = x
        if self.states is not None:
            if self.states.shape[0] != x.shape[0]:
                raise ValueError(
                    f"the memory holds a batch of {self.states.shape[0]}, the segment has "
                    f"{x.shape[0]}; start a new state for a new batch size"
                )
            context = torch.cat((self.states.to(x.dtype), x), dim=1)
        s = context.shape[1]
        # Trim by the memory's own size: the segment's length has no say in it.
        self.states = context[:, max(0, s - self.size) :].detach()
        self.seen += x.shape[1]
        return context

    def reset(self) -> None:
        self.states, self.seen = None, 0


class RelativeAttention(nn.Module):
    """Multi-head attention over memory + segment with Transformer-XL's relative positions.

    Called like `MultiHeadAttention`; its `cache` is a `LayerMemory`. Distances beyond
    `clamp_len` are encoded as `clamp_len`; `clamp_len=0` clamps at memory + context - 1, the
    largest distance training can see, so evaluating with a longer memory never meets an
    encoding the model was not trained on.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.attention != "dense":
            raise ConfigError(
                f"--model xl brings its own relative attention (Dai et al. 2019, §3.3) and "
                f"cannot use --attention {cfg.attention}; leave --attention at dense"
            )
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        inner = self.heads * self.head_dim
        self.to_q = nn.Linear(cfg.width, inner, bias=cfg.bias)
        self.to_kv = nn.Linear(cfg.width, 2 * inner, bias=cfg.bias)
        self.to_r = nn.Linear(cfg.width, inner, bias=False)  # W_{k,R}
        self.content_bias = nn.Parameter(torch.zeros(self.heads, self.head_dim))  # u
        self.position_bias = nn.Parameter(torch.zeros(self.heads, self.head_dim))  # v
        self.unify_heads = nn.Linear(inner, cfg.width, bias=cfg.bias)
        self.core = DenseAttention(cfg)
        self.clamp = cfg.clamp_len or cfg.memory + cfg.context - 1
        # Sinusoids of distances -clamp … clamp; row clamp + r encodes distance r.
        table = sinusoidal_table(2 * self.clamp + 1, cfg.width, start=-self.clamp)
        self.register_buffer("sinusoids", table, persistent=False)

    def encodings(self, t: int, s: int) -> Tensor:
        """R for distances s - 1 down to -(t - 1), clamped: (s + t - 1, width)."""
        distances = torch.arange(s - 1, -t, -1, device=self.sinusoids.device)
        return self.sinusoids[distances.clamp(-self.clamp, self.clamp) + self.clamp]

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        cache: LayerMemory | None = None,
    ) -> Tensor:
        """x (b, t, width) -> (b, t, width); `mask` (b, s) covers memory and segment."""
        b, t, _ = x.shape
        h, d = self.heads, self.head_dim
        context = x if cache is None else cache.extend(x)  # (b, s, width)
        s = context.shape[1]
        if mask is not None and mask.shape[1] != s:
            raise ValueError("a padding mask with a memory must cover the memory too")
        q = self.to_q(x).view(b, t, h, d).transpose(1, 2)  # (b, h, t, d)
        k, v = self.to_kv(context).view(b, s, 2, h, d).permute(2, 0, 3, 1, 4)  # 2 × (b, h, s, d)
        r = self.to_r(self.encodings(t, s).to(x.dtype))  # (s + t - 1, h·d)
        r = r.view(-1, h, d).transpose(0, 1)  # (h, s + t - 1, d)
        by_distance = (q + self.position_bias[:, None]) @ r.transpose(-2, -1)  # (b, h, t, s+t-1)
        position = relative_shift(by_distance) * softmax_scale(d)  # (b, h, t, s)
        # The core adds `position` to the scaled content scores (q + u)ᵀk / √d.
        out = self.core(
            q + self.content_bias[:, None], k, v, key_mask=mask, causal=causal, bias=position
        )  # (b, h, t, d)
        return self.unify_heads(out.transpose(1, 2).reshape(b, t, h * d))
