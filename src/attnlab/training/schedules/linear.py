"""Linear warm-up, then a straight line down to the floor at the end of the budget.

Decaying linearly to zero beats cosine decay to a tenth at equal compute in a systematic
sweep (Bergsma et al. 2025, "Straight to Zero: Why Linearly Decaying the Learning Rate to Zero
Works Best for LLMs"): give `--min-lr 0` for that.
"""

from __future__ import annotations

from torch import nn

from ...config import TrainConfig
from ...registry import SCHEDULES


class WarmedUp:
    """What the schedules share: a linear warm-up from lr/warmup to lr over `warmup` steps,
    then `decayed(progress)` of the budget share spent (0 to 1)."""

    def __init__(self, cfg: TrainConfig, model: nn.Module | None = None):
        self.lr, self.min_lr, self.warmup = cfg.lr, cfg.min_lr, cfg.warmup

    def __call__(self, step: int, progress: float) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        return self.decayed(min(1.0, progress))

    def decayed(self, progress: float) -> float:
        raise NotImplementedError


@SCHEDULES.register("linear")
class Linear(WarmedUp):
    """Warm-up over `warmup` steps, then lr -> min_lr in a straight line over the budget."""

    def decayed(self, progress: float) -> float:
        return self.min_lr + (self.lr - self.min_lr) * (1 - progress)
