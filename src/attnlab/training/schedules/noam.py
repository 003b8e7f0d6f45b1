"""The warm-up schedule of "Attention Is All You Need" (Vaswani et al. 2017, §5.3, eq. 3):

    lrate = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)

linear growth for `warmup` steps, then decay with the inverse square root of the step; the
peak, at step = warmup, is (d_model · warmup)^-0.5. The rate comes from the model's width and
the warm-up alone: `--lr` and `--min-lr` do not apply; `--noam.factor` scales it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ...config import ConfigError, TrainConfig, option
from ...registry import SCHEDULES


@SCHEDULES.register("noam")
class Noam:
    """d^-0.5 · min(step^-0.5, step · warmup^-1.5), steps counted from 1 (Vaswani et al. 2017)."""

    @dataclass
    class Options:
        factor: float = option(1.0, "multiplies the paper's rate", above=0)

    def __init__(self, cfg: TrainConfig, model: nn.Module | None = None):
        width = getattr(getattr(model, "cfg", None), "width", None)
        if width is None:
            raise ConfigError("--schedule noam takes its rate from the model's width; no model")
        self.width, self.warmup = width, cfg.warmup
        self.factor = cfg.options_for(self).factor

    def __call__(self, step: int, progress: float) -> float:
        n = step + 1  # the loop counts the step about to be taken from 0, the paper from 1
        rising = n * self.warmup**-1.5 if self.warmup else float("inf")  # 0: no warm-up
        return self.factor * self.width**-0.5 * min(n**-0.5, rising)
