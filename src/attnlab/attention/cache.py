"""Key/value cache for generation: the state of every core that attends over stored keys.
One preallocated buffer per layer, filled in place: growing it by concatenation would
allocate a fresh tensor every token."""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """Keys and values of the tokens seen so far, for one attention layer."""

    bounded = True  # holds at most `capacity` positions: generation moves its window on

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.length = 0
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store (b, h, t, d) keys and values; return all stored ones, (b, h, length, d)."""
        b, h, t, d = k.shape
        end = self.length + t
        if end > self.capacity:
            raise ValueError(f"cache holds {self.capacity} positions; {end} were asked for")
        if self.keys is None or self.keys.shape[0] != b or self.keys.dtype != k.dtype:
            self.keys = torch.empty(b, h, self.capacity, d, dtype=k.dtype, device=k.device)
            self.values = torch.empty_like(self.keys)
        self.keys.narrow(2, self.length, t).copy_(k)  # narrow: cheaper than slice indexing
        self.values.narrow(2, self.length, t).copy_(v)
        self.length = end
        return self.keys.narrow(2, 0, end), self.values.narrow(2, 0, end)

    def reset(self) -> None:
        """Forget the stored tokens; the buffers stay allocated for reuse."""
        self.length = 0
