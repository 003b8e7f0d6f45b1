"""The interface every position encoding shares, and the sinusoids several of them use.

A position encoding acts in one of two places (`acts_on`):

- "input": `embed(t, start)` returns (t, width) vectors added to the token embeddings;
  the model's `InputEmbedding` holds it;
- "attention": each attention layer holds its own, and calls `bias(q, t, s)` for an additive
  score bias (ALiBi, relative positions) and `queries_keys(q, k, start)` to transform the
  queries and keys (rotary positions).

The base class does nothing in either place; the `none` encoding is built nowhere.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import POSITIONS


def sinusoidal_table(length: int, width: int, start: int = 0) -> Tensor:
    """Vaswani et al. 2017, §3.5: PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...)."""
    position = torch.arange(start, start + length, dtype=torch.float64)[:, None]
    frequency = torch.exp(-math.log(10000.0) * torch.arange(0, width, 2) / width)
    table = torch.zeros(length, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table.float()


class Position(nn.Module):
    """Position information; `needs` lists the attention-core features it relies on."""

    acts_on: ClassVar[str] = "input"
    needs: ClassVar[frozenset[str]] = frozenset()
    name: ClassVar[str]

    def __init__(self, cfg: ModelConfig, length: int):
        """`length`: the positions the model may see (the context, plus a CLS position)."""
        super().__init__()

    def embed(self, t: int, start: int = 0) -> Tensor | None:
        """(t, width) vectors for positions start … start + t - 1, or None."""
        return None

    def bias(self, q: Tensor, t: int, s: int) -> Tensor | None:
        """A score bias for queries at the last t of s positions, broadcastable to
        (b, h, t, s); q is (b, h, t, d). None when the encoding adds none."""
        return None

    def queries_keys(self, q: Tensor, k: Tensor, start: int) -> tuple[Tensor, Tensor]:
        """Queries (b, h, t, d) at positions start … start + t - 1 and keys (b, h, s, d) at
        positions start + t - s …, as the core should see them."""
        return q, k


@POSITIONS.register("none")
class NoPositions(Position):
    """No position information: attention sees a set of tokens."""

    acts_on = "nowhere"


def build_position(cfg: ModelConfig, acts_on: str, length: int | None = None) -> Position | None:
    """The position module for `acts_on` ("input" or "attention"), or None if the chosen
    encoding acts elsewhere."""
    cls = POSITIONS[cfg.position]
    return cls(cfg, length or cfg.context) if cls.acts_on == acts_on else None
