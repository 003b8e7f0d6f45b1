"""The transformer block: self-attention and a feed-forward network, each wrapped in a
residual connection and a LayerNorm (Vaswani et al. 2017, §3.1).

`norm="post"` normalises after each residual sum, as in the original paper and "Transformers
from scratch"; `norm="pre"` normalises each sublayer's input instead (GPT-2), which keeps
deep stacks trainable without warm-up tricks.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .attention import MultiHeadAttention
from .config import ModelConfig
from .registry import ACTIVATIONS

ACTIVATIONS.add("relu", nn.ReLU)
ACTIVATIONS.add("gelu", nn.GELU)


class FeedForward(nn.Sequential):
    """Position-wise MLP: width -> ff_mult·width -> width (Vaswani et al. 2017, eq. 2)."""

    def __init__(self, cfg: ModelConfig):
        hidden = cfg.ff_mult * cfg.width
        super().__init__(
            nn.Linear(cfg.width, hidden, bias=cfg.bias),
            ACTIVATIONS[cfg.activation](),
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
        self.norm1 = nn.LayerNorm(cfg.width, bias=cfg.bias)
        self.norm2 = nn.LayerNorm(cfg.width, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def new_state(self, capacity: int) -> Any:
        return self.attention.new_state(capacity)

    def forward(
        self, x: Tensor, *, mask: Tensor | None = None, causal: bool = False, state: Any = None
    ) -> Tensor:
        """`mask` (b, s) marks real tokens; `state` is this block's from `new_state`."""
        if self.pre_norm:
            attended = self.attention(self.norm1(x), mask=mask, causal=causal, state=state)
            x = x + self.dropout(attended)
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attention(x, mask=mask, causal=causal, state=state)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))
