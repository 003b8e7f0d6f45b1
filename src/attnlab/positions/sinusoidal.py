"""Fixed sinusoids (Vaswani et al. 2017, §3.5), added to the input. Defined for any position,
so a longer text needs no new parameters."""

from __future__ import annotations

from torch import Tensor

from ..config import ModelConfig
from ..registry import POSITIONS
from .base import Position, sinusoidal_table


@POSITIONS.register("sinusoidal")
class SinusoidalPositions(Position):
    """Fixed sinusoids added to the input (Vaswani et al. 2017, §3.5)."""

    def __init__(self, cfg: ModelConfig, length: int):
        super().__init__(cfg, length)
        self.width = cfg.width
        self.register_buffer("table", sinusoidal_table(length, cfg.width), persistent=False)

    def embed(self, t: int, start: int = 0) -> Tensor:
        if start + t > self.table.shape[0]:
            return sinusoidal_table(t, self.width, start).to(self.table.device)
        return self.table[start : start + t]
