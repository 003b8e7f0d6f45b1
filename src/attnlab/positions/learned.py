"""Learned absolute positions: one trained vector per position (GPT-2, "Transformers from
scratch"). A model cannot see further than the positions it was trained with."""

from __future__ import annotations

from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import POSITIONS
from .base import Position


@POSITIONS.register("learned")
class LearnedPositions(Position):
    """One trained vector per position, added to the input (GPT-2)."""

    def __init__(self, cfg: ModelConfig, length: int):
        super().__init__(cfg, length)
        self.embedding = nn.Embedding(length, cfg.width)

    def embed(self, t: int, start: int = 0) -> Tensor:
        if start + t > self.embedding.num_embeddings:
            raise ValueError(
                f"learned positions reach {self.embedding.num_embeddings}; "
                f"position {start + t - 1} was asked for"
            )
        return self.embedding.weight[start : start + t]  # (t, width): the rows, not a lookup
