"""Linear warm-up, then cosine decay to a floor (Loshchilov & Hutter 2017, without restarts)."""

from __future__ import annotations

import math

from ...registry import SCHEDULES
from .linear import WarmedUp


@SCHEDULES.register("cosine")
class Cosine(WarmedUp):
    """Warm-up over `warmup` steps, then lr -> min_lr along a half cosine over the budget."""

    def decayed(self, progress: float) -> float:
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.min_lr + (self.lr - self.min_lr) * cosine
