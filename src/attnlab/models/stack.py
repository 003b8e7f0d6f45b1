"""What sits between the embedding and the output layer: a stack of blocks.

Each kind of stack registers itself by `ModelConfig.model` name, takes the same inputs and
returns the same outputs, so the language model and the classifier never know which one they
hold. A stack may add a term to the training loss (`aux_loss`, e.g. a ponder cost) and report
statistics (`stats`) after each forward pass, and gives the incremental state generation
carries (`new_state`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..attention.layer import ValueResidual
from ..block import Block, drop, norm
from ..config import ModelConfig
from ..positions import build_position
from ..registry import STACKS


class LayerStates(list):
    """The incremental states of a stack, one per block (or per step); `length` is the
    number of positions already seen."""

    @property
    def length(self) -> int:
        return self[0].length if self else 0

    @property
    def bounded(self) -> bool:
        """Whether the states hold a bounded window (a key/value cache), so generation moves
        its window on at the context, rather than state that trims itself (a memory)."""
        return all(getattr(state, "bounded", True) for state in self)

    def reset(self) -> None:
        for state in self:
            state.reset()


def layer_states(states: list[Any]) -> LayerStates | None:
    """The states as one, or None if any layer keeps none (then nothing is cached)."""
    return None if any(s is None for s in states) else LayerStates(states)


def build_stack(cfg: ModelConfig) -> nn.Module:
    return STACKS[cfg.model](cfg)


def reads_segments(model: str) -> bool:
    """Whether a stack reads a text in ordered segments, carrying a memory from one to the
    next (Transformer-XL), rather than in independent windows."""
    return getattr(STACKS[model], "ordered_streams", False)


@STACKS.register("transformer")
class Transformer(nn.Module):
    """`depth` independent blocks applied in turn (Vaswani et al. 2017)."""

    needs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(self.make_block(cfg) for _ in range(cfg.depth))
        if cfg.value_residual:  # ResFormer's λ_n and μ_n for the blocks after the first
            self.value_keep = nn.Parameter(torch.full((cfg.depth - 1,), 0.5))
            self.value_first = nn.Parameter(torch.full((cfg.depth - 1,), 0.5))
        self.aux_loss: Tensor | float = 0.0
        self.stats: dict[str, float] = {}

    def make_block(self, cfg: ModelConfig) -> Block:
        return Block(cfg)

    @classmethod
    def describe(cls, cfg: ModelConfig) -> str:
        return f"{cfg.depth} block{'s' if cfg.depth != 1 else ''}"

    def new_state(self, capacity: int) -> LayerStates | None:
        return layer_states([block.new_state(capacity) for block in self.blocks])

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        state: LayerStates | None = None,
    ) -> Tensor:
        values = ValueResidual(self.value_keep, self.value_first) if self.value_residual else None
        for i, block in enumerate(self.blocks):
            x = block(x, mask=mask, causal=causal, state=None if state is None else state[i],
                      values=values)  # fmt: skip
        return x

    @property
    def value_residual(self) -> bool:
        return hasattr(self, "value_keep")


class InputEmbedding(nn.Module):
    """Token embeddings plus (where the encoding adds them to the input) position vectors.

    `prefix` vectors (such as a classifier's CLS token) are put in front of the tokens before
    positions are added, so they take the first positions. `scale` multiplies the token
    embeddings (√width in Vaswani et al. 2017, §3.4).
    """

    def __init__(self, cfg: ModelConfig, extra_positions: int = 0, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.tokens = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positions = build_position(cfg, "input", cfg.context + extra_positions)
        self.norm = norm(cfg) if cfg.embedding_norm else None
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, tokens: Tensor, start: int = 0, prefix: Tensor | None = None) -> Tensor:
        x = self.tokens(tokens)  # (b, t, width)
        if self.scale != 1.0:
            x = x * self.scale
        if prefix is not None:
            x = torch.cat((prefix.expand(x.shape[0], -1, -1), x), dim=1)
        if self.positions is not None:
            x = x + self.positions.embed(x.shape[1], start)
        if self.norm is not None:
            x = self.norm(x)
        return drop(self.dropout, x)


# The maps that write into the residual stream.
RESIDUAL_OUTPUTS = ("unify_heads.weight", "feed_forward.2.weight")


def init_weights(model: nn.Module, depth: int, zero_outputs: bool = False) -> None:
    """GPT-2's initialisation: N(0, 0.02) everywhere, and the projections that write into the
    residual stream scaled by 1/√(2·depth) so the stream's variance does not grow with depth.

    `zero_outputs` starts those projections at zero instead, so every block begins as the
    identity and the first steps train the embedding-to-output path alone (the modded-nanoGPT
    speed runs; cf. Fixup, Zhang et al. 2019, and ReZero, Bachlechner et al. 2020)."""
    for name, p in model.named_parameters():
        if p.dim() < 2 or "norm" in name:
            continue
        if zero_outputs and name.endswith(RESIDUAL_OUTPUTS):
            nn.init.zeros_(p)
            continue
        std = 0.02
        if name.endswith(RESIDUAL_OUTPUTS):
            std /= (2 * depth) ** 0.5
        nn.init.normal_(p, mean=0.0, std=std)
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
