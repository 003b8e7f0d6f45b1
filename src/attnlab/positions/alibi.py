"""ALiBi (Press et al. 2022, "Train Short, Test Long"): no position vectors at all; each head
adds -m_h·|i - j| to the score of query i and key j, a linear penalty on distance with a
head-specific slope m_h."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..config import ModelConfig
from ..registry import POSITIONS
from .base import Position


def alibi_slopes(heads: int) -> Tensor:
    """Press et al. 2022: the geometric sequence 2^(-8/n), 2^(-16/n), …; for a head count that
    is not a power of two, the slopes of the next power of two fill in (their §3)."""

    def power_of_two(n: int) -> list[float]:
        first = 2.0 ** (-8.0 / n)
        return [first ** (i + 1) for i in range(n)]

    closest = 2 ** math.floor(math.log2(heads))
    slopes = power_of_two(closest)
    if closest < heads:
        slopes += power_of_two(2 * closest)[0::2][: heads - closest]
    return torch.tensor(slopes)


def alibi_bias(heads: int, t: int, s: int, device: torch.device) -> Tensor:
    """(heads, t, s) additive bias -m_h·|i - j| for queries at the last t of s positions."""
    rows = torch.arange(s - t, s, device=device)[:, None]
    cols = torch.arange(s, device=device)[None, :]
    distance = (rows - cols).abs().float()
    return -alibi_slopes(heads).to(device)[:, None, None] * distance


@POSITIONS.register("alibi")
class ALiBi(Position):
    """A linear penalty on distance added to the scores (Press et al. 2022)."""

    acts_on = "attention"
    needs = frozenset({"qk", "bias"})

    def __init__(self, cfg: ModelConfig, length: int):
        super().__init__(cfg, length)
        self.heads = cfg.heads

    def bias(self, q: Tensor, t: int, s: int) -> Tensor:
        return alibi_bias(self.heads, t, s, q.device)
