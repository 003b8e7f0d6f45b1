"""The optimiser and its schedule: AdamW with weight decay on matrices only, linear warm-up,
then cosine decay over the step or time budget."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW; weight decay on matrices only, never on biases or norms (the decay groups of
    GPT-2 and nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2), fused=fused)


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay from lr to min_lr as `progress`
    (the share of the step or time budget spent) goes from 0 to 1."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * cosine


def budget_fraction(cfg: TrainConfig, step: int, seconds: float) -> float:
    """The share of the budget spent: of the steps, or of the minutes, whichever is more."""
    by_steps = step / cfg.steps if cfg.steps else 0.0
    by_time = seconds / (60 * cfg.minutes) if cfg.minutes else 0.0
    return max(by_steps, by_time)
