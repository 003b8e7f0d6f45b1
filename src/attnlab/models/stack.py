"""What sits between the embedding and the output layer: a stack of blocks.

Each kind of stack registers itself by `ModelConfig.model` name, takes the same inputs and
returns the same outputs, so the language model and the classifier never know which one they
hold. A stack may add a term to the training loss (`aux_loss`, e.g. a ponder cost) and
report statistics (`stats`) after each forward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..attention import KVCache
from ..block import Block
from ..config import ModelConfig
from ..positions import build_positions
from ..registry import Registry

STACKS = Registry()
register_stack = STACKS.register  # class decorator: make a stack available as `--model NAME`


def build_stack(cfg: ModelConfig) -> nn.Module:
    return STACKS[cfg.model](cfg)


class LayerCaches(list):
    """One key/value cache per block; `length` is the number of positions already seen."""

    @property
    def length(self) -> int:
        return self[0].length if self else 0

    def reset(self) -> None:
        for cache in self:
            cache.reset()


@register_stack("transformer")
class Transformer(nn.Module):
    """`depth` independent blocks applied in turn."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.aux_loss: Tensor | float = 0.0
        self.stats: dict[str, float] = {}

    def new_state(self, capacity: int) -> LayerCaches:
        return LayerCaches(KVCache(capacity) for _ in self.blocks)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        state: LayerCaches | None = None,
    ) -> Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, mask=mask, causal=causal, cache=None if state is None else state[i])
        return x


class InputEmbedding(nn.Module):
    """Token embeddings plus (where the scheme adds them to the input) position encodings.

    `prefix` vectors (such as a classifier's CLS token) are put in front of the tokens before
    positions are added, so they take the first positions.
    """

    def __init__(self, cfg: ModelConfig, extra_positions: int = 0):
        super().__init__()
        self.tokens = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positions = build_positions(cfg.position, cfg.context + extra_positions, cfg.width)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, tokens: Tensor, start: int = 0, prefix: Tensor | None = None) -> Tensor:
        x = self.tokens(tokens)  # (b, t, width)
        if prefix is not None:
            x = torch.cat((prefix.expand(x.shape[0], -1, -1), x), dim=1)
        if self.positions is not None:
            x = x + self.positions(x.shape[1], start)
        return self.dropout(x)


def init_weights(model: nn.Module, depth: int) -> None:
    """GPT-2's initialisation: N(0, 0.02) everywhere, and the projections that write into the
    residual stream scaled by 1/√(2·depth) so the stream's variance does not grow with depth."""
    for name, p in model.named_parameters():
        if p.dim() < 2 or "norm" in name:
            continue
        std = 0.02
        if name.endswith(("unify_heads.weight", "feed_forward.2.weight")):
            std /= (2 * depth) ** 0.5
        nn.init.normal_(p, mean=0.0, std=std)
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
