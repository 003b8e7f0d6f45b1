"""Linear warm-up, then a straight line down to the floor at the end of the budget.

Decaying linearly to zero beats cosine decay to a tenth at equal compute in a systematic
sweep (Bergsma et al. 2025, "Straight to Zero: Why Linearly Decaying the Learning Rate to Zero
Works Best for LLMs"): give `--min-lr 0` for that.
"""

from __future__ import annotations

from torch import nn

from ...config import TrainConfig
from ...registry import SCHEDULES


def warmed_up(lr: float, warmup: int, step: int) -> float | None:
    """The warm-up's rate at `step` (linear from lr/warmup to lr), or None once it is over."""
    return lr * (step + 1) / warmup if step < warmup else None


@SCHEDULES.register("linear")
class Linear:
    """Warm-up over `warmup` steps, then lr -> min_lr in a straight line over the budget."""

    def __init__(self, cfg: TrainConfig, model: nn.Module | None = None):
        self.lr, self.min_lr, self.warmup = cfg.lr, cfg.min_lr, cfg.warmup

    def __call__(self, step: int, progress: float) -> float:
        warm = warmed_up(self.lr, self.warmup, step)
        if warm is not None:
            return warm
        return self.min_lr + (self.lr - self.min_lr) * (1 - min(1.0, progress))
