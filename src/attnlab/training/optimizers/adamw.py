"""AdamW (Loshchilov & Hutter 2019) with weight decay on matrices only, never on biases or
norms: the decay groups of GPT-2 and nanoGPT."""

from __future__ import annotations

import torch
from torch import nn

from ...config import TrainConfig
from ...registry import OPTIMIZERS


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters in two groups: matrices (decayed) and the rest. Parameters the
    model's `lr_scales` (name -> factor) scales by other than 1 go into further groups, each
    with its "lr_scale" (layer-wise learning-rate decay)."""
    scales = getattr(model, "lr_scales", {})
    groups = [{"params": [], "weight_decay": weight_decay}, {"params": [], "weight_decay": 0.0}]
    scaled: dict[tuple[float, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays, scale = p.dim() >= 2, scales.get(name, 1.0)
        if scale == 1.0:
            groups[0 if decays else 1]["params"].append(p)
            continue
        group = {"params": [], "weight_decay": weight_decay if decays else 0.0, "lr_scale": scale}
        scaled.setdefault((scale, decays), group)["params"].append(p)
    return groups + list(scaled.values())


@OPTIMIZERS.register("adamw")
class AdamW:
    """Adam with decoupled weight decay on matrices (Loshchilov & Hutter 2019)."""

    @staticmethod
    def build(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
        groups = decay_groups(model, cfg.weight_decay)
        fused = device.type == "cuda"
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2), fused=fused)
