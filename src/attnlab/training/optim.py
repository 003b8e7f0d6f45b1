"""The optimiser and the learning-rate schedule a `TrainConfig` chooses, and the budget."""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..registry import OPTIMIZERS, SCHEDULES


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device):
    return OPTIMIZERS[cfg.optimizer].build(model, cfg, device)


def make_schedule(cfg: TrainConfig, model: nn.Module | None = None):
    """A function (step, progress) -> learning rate."""
    return SCHEDULES[cfg.schedule](cfg, model)


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """The learning rate of the configured schedule at a step (for schedules that need no
    model)."""
    return make_schedule(cfg)(step, progress)


def budget_fraction(cfg: TrainConfig, step: int, seconds: float) -> float:
    """The share of the budget spent: of the steps, or of the minutes, whichever is more."""
    by_steps = step / cfg.steps if cfg.steps else 0.0
    by_time = seconds / (60 * cfg.minutes) if cfg.minutes else 0.0
    return max(by_steps, by_time)
