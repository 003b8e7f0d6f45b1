"""Transformer-XL (Dai et al. 2019): segment-level recurrence with relative positions.

A long text is read as consecutive segments. Each layer keeps the hidden states it received
for the last `memory` positions (§3.2: h̃ = [SG(m) ∘ h], stop-gradient on the memory) and
its queries attend over memory + segment, with the relative-position scores of §3.3
(`attention/relative.py`). A layer's memory therefore reaches `memory` positions further back
than the one below it: the context grows with depth (§3.2, O(N·L)).

The blocks are ordinary `Block`s; with `position="relative"` (forced by `--model xl`) they hold
`RelativeAttention`, whose "cache" is the layer's memory. So the stack is the plain one with a
different state: `new_state()` returns one `LayerMemory` per block, which trims itself after
every segment. For pre-norm blocks the memory holds the normalised inputs the attention sees;
LayerNorm acts per position, so this is the same as keeping the block inputs.
"""

from __future__ import annotations

from ..attention import LayerMemory
from ..config import ModelConfig
from .stack import Transformer, register_stack


class SegmentMemory(list):
    """One `LayerMemory` per block. Unlike a key/value cache it is not `bounded`: it keeps the
    last `size` positions of any amount of text, so generation never has to restart it.

    `size` may be changed between segments, e.g. to evaluate with a longer memory than the
    one trained with (§4: longer evaluation contexts).
    """

    bounded = False

    def __init__(self, layers: int, size: int):
        super().__init__(LayerMemory(size) for _ in range(layers))
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    @size.setter
    def size(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"a memory size must not be negative, got {value}")
        self._size = value
        for layer in self:
            layer.size = value

    @property
    def length(self) -> int:
        """Positions read so far (all of them, not only those still in memory)."""
        return self[0].seen if self else 0

    def reset(self) -> None:
        for layer in self:
            layer.reset()


@register_stack("xl")
class TransformerXL(Transformer):
    """`depth` blocks with relative attention over a memory of earlier segments.

    Call `stack(x, causal=True, state=state)` segment after segment with one state; without a
    state each call is a segment with an empty memory.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.memory = cfg.memory

    def new_state(self, capacity: int = 0, memory: int | None = None) -> SegmentMemory:
        """An empty memory of `memory` positions per layer (default: the configured one).
        `capacity`, the window of a key/value cache, does not bound it."""
        return SegmentMemory(len(self.blocks), self.memory if memory is None else memory)
