"""Warm-up, stable, decay (WSD): the peak rate held for most of the budget, then a linear
cool-down to the floor over its last part (Hu et al. 2024, "MiniCPM", §4.1; Hägele et al.
2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations").
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ...config import TrainConfig, option
from ...registry import SCHEDULES
from .linear import WarmedUp


@SCHEDULES.register("wsd")
class WarmupStableDecay(WarmedUp):
    """Warm-up over `warmup` steps, lr until the last `decay` share of the budget, then a
    straight line to min_lr."""

    @dataclass
    class Options:
        decay: float = option(0.3, "share of the budget spent cooling down", above=0, at_most=1)

    def __init__(self, cfg: TrainConfig, model: nn.Module | None = None):
        super().__init__(cfg, model)
        self.decay = cfg.options_for(WarmupStableDecay).decay

    def decayed(self, progress: float) -> float:
        remaining = (1 - progress) / self.decay  # 1 as the cool-down starts, 0 at the end
        return self.min_lr + (self.lr - self.min_lr) * min(1.0, remaining)
