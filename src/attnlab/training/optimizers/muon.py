"""Muon for the hidden matrices, AdamW for the rest, as one optimiser (Jordan et al. 2024,
"Muon: an optimizer for hidden layers in neural networks"; the modded-nanoGPT speed runs).

For a weight matrix W with gradient G, Muon keeps Nesterov momentum M ← μM + G and steps along
the nearest semi-orthogonal matrix to the momentum, found without an SVD by the Newton–Schulz
iteration X ← aX + b(XXᵀ)X + c(XXᵀ)²X from X₀ = M/‖M‖_F, with (a, b, c) = (3.4445, −4.7750,
2.0315) chosen to push every singular value towards 1 in five steps:

    W ← W − lr · √max(1, rows/cols) · NS₅(G + μM)

Every update then has all its singular values near one, whatever the scale of the gradient
(Bernstein & Newhouse 2024, "Old optimizer, new norm", §4: steepest descent under the spectral
norm). It suits the matrices inside the blocks; the embeddings, the output layer and the gains
and biases keep AdamW (Loshchilov & Hutter 2019). Both live in one `torch.optim.Optimizer` so
a checkpoint saves all of its state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...config import TrainConfig, option
from ...registry import OPTIMIZERS

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """An approximately semi-orthogonal matrix near g (rows, cols): the quintic Newton–Schulz
    iteration of Jordan et al. 2024 on g/‖g‖_F, on the wide orientation (fewer products)."""
    a, b, c = NS_COEFFICIENTS
    x = g / (g.norm() + eps)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T  # (rows, rows), the small side
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class MuonAdamW(torch.optim.Optimizer):
    """Muon on the param groups marked `muon=True`, AdamW on the others.

    Group settings: lr, weight_decay (decoupled, both kinds); Muon: momentum, ns_steps;
    AdamW: betas, eps. A group's `lr_scale` (read by the training loop) scales the schedule's
    rate for it, which is how Muon's larger rate rides on the one schedule."""

    def __init__(self, groups: list[dict], lr: float = 1e-3, momentum: float = 0.95,
                 ns_steps: int = 5, betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.0):  # fmt: skip
        defaults = dict(lr=lr, muon=False, momentum=momentum, ns_steps=ns_steps, betas=betas,
                        eps=eps, weight_decay=weight_decay)  # fmt: skip
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            update = self.muon_step if group["muon"] else self.adamw_step
            for p in group["params"]:
                if p.grad is not None:
                    if group["weight_decay"]:
                        p.mul_(1 - group["lr"] * group["weight_decay"])
                    update(p, group)
        return loss

    def muon_step(self, p: Tensor, group: dict) -> None:
        state = self.state[p]
        if not state:
            state["momentum"] = torch.zeros_like(p)
        momentum, mu = state["momentum"], group["momentum"]
        momentum.mul_(mu).add_(p.grad)
        nesterov = p.grad.add(momentum, alpha=mu)
        matrix = nesterov.reshape(p.shape[0], -1)
        direction = newton_schulz(matrix, group["ns_steps"])
        scale = max(1.0, matrix.shape[0] / matrix.shape[1]) ** 0.5
        p.add_(direction.view_as(p), alpha=-group["lr"] * scale)

    def adamw_step(self, p: Tensor, group: dict) -> None:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float64)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        (beta1, beta2), grad = group["betas"], p.grad
        state["step"] += 1
        t = float(state["step"])
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = (state["exp_avg_sq"] / (1 - beta2**t)).sqrt_().add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denominator, value=-group["lr"] / (1 - beta1**t))


def hidden_matrices(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(matrices inside the blocks, every other trainable parameter). Embedding tables and the
    output layer (`head`) are not hidden: Muon's spectral step does not suit a lookup table or
    the map to a vocabulary (Jordan et al. 2024)."""
    outer = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head = getattr(model, "head", None)
    outer |= {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    hidden, rest = [], []
    for p in model.parameters():
        if p.requires_grad:
            (hidden if p.dim() >= 2 and id(p) not in outer else rest).append(p)
    return hidden, rest


@OPTIMIZERS.register("muon")
class Muon:
    """Muon for the matrices inside the blocks, AdamW (--lr, --weight-decay, --beta2) for
    embeddings, the output layer, gains and biases (Jordan et al. 2024)."""

    @dataclass
    class Options:
        lr: float = option(0.02, "Muon's peak rate for the hidden matrices", above=0)
        momentum: float = option(0.95, "Muon's Nesterov momentum", at_least=0, below=1)
        weight_decay: float = option(0.0, "decoupled weight decay of the hidden matrices",
                                     at_least=0)  # fmt: skip
        ns_steps: int = option(5, "Newton–Schulz iterations per step", at_least=1)

    @staticmethod
    def build(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
        opts = cfg.options_for(Muon)
        hidden, rest = hidden_matrices(model)
        groups = [
            {"params": hidden, "muon": True, "lr_scale": opts.lr / cfg.lr,
             "weight_decay": opts.weight_decay},
            {"params": [p for p in rest if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
        ]  # fmt: skip
        groups = [g for g in groups if g["params"]]
        return MuonAdamW(groups, lr=cfg.lr, momentum=opts.momentum, ns_steps=opts.ns_steps,
                         betas=(0.9, cfg.beta2))  # fmt: skip
