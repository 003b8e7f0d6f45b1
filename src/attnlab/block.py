"""The transformer block: self-attention and a feed-forward network, each wrapped in a
residual connection and a LayerNorm (Vaswani et al. 2017, §3.1).

`norm="post"` normalises after each residual sum, as in the original paper and "Transformers
from scratch"; `norm="pre"` normalises each sublayer's input instead (GPT-2), which keeps
deep stacks trainable without warm-up tricks.
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import KVCache, build_attention
from .config import ModelConfig


class FeedForward(nn.Sequential):
    """Position-wise MLP: width -> ff_mult·width -> width (Vaswani et al. 2017, eq. 2)."""

    def __init__(self, cfg: ModelConfig):
        hidden = cfg.ff_mult * cfg.width
        super().__init__(
            nn.Linear(cfg.width, hidden, bias=cfg.bias),
            nn.ReLU() if cfg.activation == "relu" else nn.GELU(),
            nn.Linear(hidden, cfg.width, bias=cfg.bias),
        )


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre_norm = cfg.norm == "pre"
        self.attention = build_attention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.norm1 = nn.LayerNorm(cfg.width, bias=cfg.bias)
        self.norm2 = nn.LayerNorm(cfg.width, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
    ) -> Tensor:
        """x: (b, t, width) -> (b, t, width); `mask` (b, s) marks real tokens."""
        if self.pre_norm:
            x = x + self.dropout(
                self.attention(self.norm1(x), mask=mask, causal=causal, cache=cache)
            )
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attention(x, mask=mask, causal=causal, cache=cache)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))
