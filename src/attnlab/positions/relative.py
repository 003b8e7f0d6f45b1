"""Relative positions (Transformer-XL, Dai et al. 2019, §3.3): the score of query i and key j
depends on their distance r = i - j, never on where they sit, so a model can attend over a
memory of earlier segments whose absolute positions it never saw:

    A_ij = q_iᵀk_j + q_iᵀW_R R_r + uᵀk_j + vᵀW_R R_r
         = (q_i + u)ᵀ k_j  +  (q_i + v)ᵀ W_R R_r
           content terms (a)+(c)   position terms (b)+(d)

R_r is the sinusoid of distance r, W_R a learned map (the paper's W_{k,R}) and u, v two learned
vectors per head shared by every position. `queries_keys` adds u to the queries (the core then
computes the content terms); `bias` returns the position terms, scaled like the scores.

The position terms are computed once per distance, not once per pair: (q_i + v)ᵀ W_R R_r for
every query and every distance, then moved into (query, key) layout by `relative_shift`.
The paper's shift leaves entries above the diagonal filled with scores of the wrong distance,
hidden only by the causal mask. Here the distances run over every value a pair can have,
s - 1 down to -(t - 1), so each entry is exact and the encoding also serves bidirectional
models (a classifier).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig, option
from ..registry import POSITIONS
from .base import Position, sinusoidal_table


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


@POSITIONS.register("relative")
class RelativePositions(Position):
    """Scores biased by the distance of query and key (Transformer-XL, Dai et al. 2019).

    Distances beyond `clamp_len` are encoded as `clamp_len`; 0 clamps at the largest distance
    training can see (memory + context - 1), so evaluating with a longer memory never meets an
    encoding the model was not trained on."""

    acts_on = "attention"
    needs = frozenset({"qk", "bias"})

    @dataclass
    class Options:
        clamp_len: int = option(
            0,
            "largest relative distance encoded (0: memory + context - 1, the largest training "
            "sees)",
            at_least=0,
        )

    def __init__(self, cfg: ModelConfig, length: int):
        super().__init__(cfg, length)
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.to_r = nn.Linear(cfg.width, cfg.heads * cfg.head_dim, bias=False)  # W_{k,R}
        self.content_bias = nn.Parameter(torch.zeros(cfg.heads, cfg.head_dim))  # u
        self.position_bias = nn.Parameter(torch.zeros(cfg.heads, cfg.head_dim))  # v
        memory = cfg.options.get("xl", {}).get("memory", 0)
        self.clamp = cfg.options_for(self).clamp_len or memory + cfg.context - 1
        # Sinusoids of distances -clamp … clamp; row clamp + r encodes distance r.
        table = sinusoidal_table(2 * self.clamp + 1, cfg.width, start=-self.clamp)
        self.register_buffer("sinusoids", table, persistent=False)

    def encodings(self, t: int, s: int) -> Tensor:
        """R for distances s - 1 down to -(t - 1), clamped: (s + t - 1, width)."""
        distances = torch.arange(s - 1, -t, -1, device=self.sinusoids.device)
        return self.sinusoids[distances.clamp(-self.clamp, self.clamp) + self.clamp]

    def bias(self, q: Tensor, t: int, s: int) -> Tensor:
        h, d = self.heads, self.head_dim
        r = self.to_r(self.encodings(t, s).to(q.dtype))  # (s + t - 1, h·d)
        r = r.view(-1, h, d).transpose(0, 1)  # (h, s + t - 1, d)
        by_distance = (q + self.position_bias[:, None]) @ r.transpose(-2, -1)  # (b,h,t,s+t-1)
        return relative_shift(by_distance) * d**-0.5  # (b, h, t, s)

    def queries_keys(self, q: Tensor, k: Tensor, start: int) -> tuple[Tensor, Tensor]:
        return q + self.content_bias[:, None], k
