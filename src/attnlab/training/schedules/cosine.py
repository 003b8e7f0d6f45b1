"""Linear warm-up, then cosine decay to a floor (Loshchilov & Hutter 2017, without restarts)."""

from __future__ import annotations

import math

from torch import nn

from ...config import TrainConfig
from ...registry import SCHEDULES
from .linear import warmed_up


@SCHEDULES.register("cosine")
class Cosine:
    """Warm-up over `warmup` steps, then lr -> min_lr along a half cosine over the budget."""

    def __init__(self, cfg: TrainConfig, model: nn.Module | None = None):
        self.lr, self.min_lr, self.warmup = cfg.lr, cfg.min_lr, cfg.warmup

    def __call__(self, step: int, progress: float) -> float:
        warm = warmed_up(self.lr, self.warmup, step)
        if warm is not None:
            return warm
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.min_lr + (self.lr - self.min_lr) * cosine
