"""Size and cost of a configuration before anything is trained: the parameters of its layer
stack and its forward FLOPs per token, and the widest model that fits a budget of either.

Both count the stack only, not the embedding and output layers, as Kaplan et al. (2020, §2.1)
do: the vocabulary then does not decide which shape wins.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import ModelConfig
from ..errors import ConfigError
from ..models.base import parameter_count
from ..models.stack import build_stack


def stack_parameters(cfg: ModelConfig) -> int:
    """Parameters of the layer stack (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        return parameter_count(build_stack(cfg))


def forward_flops(cfg: ModelConfig) -> float:
    """Forward FLOPs per token, Kaplan et al. (2020), Table 1: 2·N + 2·n_layer·n_ctx·d_attn
    (N the stack's parameters); the attention term is that of dense attention."""
    inner = cfg.heads * cfg.head_dim
    return 2.0 * stack_parameters(cfg) + 2.0 * cfg.depth * cfg.context * inner


def fits(cfg: ModelConfig, max_parameters: int, max_flops: float) -> bool:
    return (not max_parameters or stack_parameters(cfg) <= max_parameters) and (
        not max_flops or forward_flops(cfg) <= max_flops
    )


def widest(cfg: ModelConfig, max_parameters: int, max_flops: float, step: int) -> int | None:
    """The largest width, a multiple of `step`, whose model fits the budget (both grow with
    the width); None if not even `step` fits."""

    def ok(width: int) -> bool:
        try:
            return fits(dataclasses.replace(cfg, width=width), max_parameters, max_flops)
        except ConfigError:
            return False

    if not ok(step):
        return None
    low, high = 1, 2
    while ok(high * step):  # grow, then bisect between the last fitting multiple and this one
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if ok(middle * step) else (low, middle)
    return low * step
