"""The transformer block: self-attention and a feed-forward network, each wrapped in a
residual connection and a LayerNorm (Vaswani et al. 2017, §3.1).

`norm="post"` normalises after each residual sum, as in the original paper and "Transformers
from scratch"; `norm="pre"` normalises each sublayer's input instead (GPT-2), which keeps
deep stacks trainable without warm-up tricks.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MultiHeadAttention
from .attention.layer import ValueResidual
from .config import ModelConfig
from .registry import ACTIVATIONS

ACTIVATIONS.add("relu", nn.ReLU)
ACTIVATIONS.add("gelu", nn.GELU)


@ACTIVATIONS.register("gelu_tanh")
class TanhGELU(nn.GELU):
    """GELU by its tanh approximation, as GPT-2 computes it ("gelu_new")."""

    def __init__(self) -> None:
        super().__init__(approximate="tanh")


@ACTIVATIONS.register("relu2")
class SquaredReLU(nn.Module):
    """max(0, x)², the activation Primer's search found (So et al. 2021, §3)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x).square()


@ACTIVATIONS.register("swiglu")
class SwiGLU(nn.Module):
    """Swish(xW) ⊙ xV (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6): the first half
    of the input gates the second. Gated, so the layer before it is twice as wide."""

    gated = True

    def forward(self, x: Tensor) -> Tensor:
        gate, value = x.chunk(2, dim=-1)
        return F.silu(gate) * value


def drop(dropout: nn.Dropout, x: Tensor) -> Tensor:
    """`dropout(x)`, skipped outright where it would do nothing (evaluation, p = 0): decoding
    passes through it several times a token."""
    return dropout(x) if dropout.training and dropout.p else x


def norm(cfg: ModelConfig) -> nn.LayerNorm:
    """The LayerNorm every part of a model uses."""
    return nn.LayerNorm(cfg.width, eps=cfg.norm_eps, bias=cfg.bias)


class FeedForward(nn.Sequential):
    """Position-wise MLP: width -> ff_mult·width -> width (Vaswani et al. 2017, eq. 2).

    A gated activation (SwiGLU) gets two input maps of 2/3 the hidden width, which keeps the
    parameter count of the ungated layer (Shazeer 2020, §2)."""

    def __init__(self, cfg: ModelConfig):
        activation = ACTIVATIONS[cfg.activation]
        hidden = cfg.ff_mult * cfg.width
        if getattr(activation, "gated", False):
            hidden = max(1, 2 * hidden // 3)
        inputs = 2 * hidden if getattr(activation, "gated", False) else hidden
        super().__init__(
            nn.Linear(cfg.width, inputs, bias=cfg.bias),
            activation(),
            nn.Linear(hidden, cfg.width, bias=cfg.bias),
        )


class Block(nn.Module):
    """x (b, t, width) -> (b, t, width). `attention` replaces the default self-attention
    layer (Transformer-XL's attends over a memory too)."""

    def __init__(self, cfg: ModelConfig, attention: nn.Module | None = None):
        super().__init__()
        self.pre_norm = cfg.norm == "pre"
        self.attention = attention or MultiHeadAttention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.norm1 = norm(cfg)
        self.norm2 = norm(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def new_state(self, capacity: int) -> Any:
        return self.attention.new_state(capacity)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        state: Any = None,
        values: ValueResidual | None = None,
    ) -> Tensor:
        """`mask` (b, s) marks real tokens; `state` is this block's from `new_state`;
        `values` carries the first block's attention values to the later ones."""
        if self.pre_norm:
            attended = self.attention(self.norm1(x), mask=mask, causal=causal, state=state,
                                      values=values)  # fmt: skip
            x = x + drop(self.dropout, attended)
            return x + drop(self.dropout, self.feed_forward(self.norm2(x)))
        attended = self.attention(x, mask=mask, causal=causal, state=state, values=values)
        x = self.norm1(x + drop(self.dropout, attended))
        return self.norm2(x + drop(self.dropout, self.feed_forward(x)))
