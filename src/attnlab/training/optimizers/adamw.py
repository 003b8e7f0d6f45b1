"""AdamW (Loshchilov & Hutter 2019) with weight decay on matrices only, never on biases or
norms: the decay groups of GPT-2 and nanoGPT."""

from __future__ import annotations

import torch
from torch import nn

from ...config import TrainConfig
from ...registry import OPTIMIZERS


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters in two groups: matrices (decayed) and the rest."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


@OPTIMIZERS.register("adamw")
class AdamW:
    """Adam with decoupled weight decay on matrices (Loshchilov & Hutter 2019)."""

    @staticmethod
    def build(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
        groups = decay_groups(model, cfg.weight_decay)
        fused = device.type == "cuda"
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2), fused=fused)
