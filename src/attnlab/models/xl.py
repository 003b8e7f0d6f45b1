"""Transformer-XL (Dai et al. 2019): segment-level recurrence with relative positions.

A long text is read as consecutive segments. Each layer keeps the hidden states it received
for the last `memory` positions (§3.2: h̃ = [SG(m) ∘ h], stop-gradient on the memory) and
its queries attend over memory + segment, with the relative-position scores of §3.3
(`positions/relative.py`, which this stack always uses). A layer's memory therefore reaches
`memory` positions further back than the one below it: the context grows with depth (§3.2,
O(N·L)).

The memory is each attention layer's incremental state: `new_state()` gives one `LayerMemory`
per block, which trims itself after every segment. For pre-norm blocks the memory holds the
normalised inputs the attention sees; LayerNorm acts per position, so this is the same as
keeping the block inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..attention import MultiHeadAttention
from ..block import Block
from ..config import ConfigError, ModelConfig, option
from ..registry import STACKS
from .stack import LayerStates, Transformer


class LayerMemory:
    """The hidden states one layer saw in earlier segments: at most `size` positions, detached,
    so no gradient flows into an earlier segment (Dai et al. 2019, §3.2: SG(·) in h̃)."""

    bounded = False  # keeps the last `size` positions of any amount of text

    def __init__(self, size: int):
        self.size = size
        self.states: Tensor | None = None  # (b, m, width), m <= size
        self.seen = 0

    @property
    def length(self) -> int:
        """Positions read so far (all of them, not only those still in memory)."""
        return self.seen

    def extend(self, x: Tensor) -> Tensor:
        """Memory followed by the segment x (b, t, width) -> (b, m + t, width); then keep the
        last `size` of those positions as the memory for the next segment."""
        context = x
        if self.states is not None:
            if self.states.shape[0] != x.shape[0]:
                raise ValueError(
                    f"the memory holds a batch of {self.states.shape[0]}, the segment has "
                    f"{x.shape[0]}; start a new state for a new batch size"
                )
            context = torch.cat((self.states.to(x.dtype), x), dim=1)
        s = context.shape[1]
        # Trim by the memory's own size: the segment's length has no say in it.
        self.states = context[:, max(0, s - self.size) :].detach()
        self.seen += x.shape[1]
        return context

    def reset(self) -> None:
        self.states, self.seen = None, 0


class MemoryAttention(MultiHeadAttention):
    """Attention whose keys and values come from the memory followed by the segment; its
    incremental state is a `LayerMemory`, not the core's."""

    def __init__(self, cfg: ModelConfig, memory: int):
        super().__init__(cfg, separate_kv=True)
        self.memory = memory

    def new_state(self, capacity: int) -> LayerMemory:
        return LayerMemory(self.memory)

    def forward(
        self,
        x: Tensor,
        *,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        causal: bool = False,
        state: LayerMemory | None = None,
        values: None = None,
    ) -> Tensor:
        """`mask` (b, s) covers memory and segment. `values` is always None: the config
        refuses a value residual here (each layer's memory holds other hidden states)."""
        context = x if state is None else state.extend(x)  # (b, s, width)
        if mask is not None and mask.shape[1] != context.shape[1]:
            raise ValueError("a padding mask with a memory must cover the memory too")
        return super().forward(x, context=context, mask=mask, causal=causal)


class SegmentMemory(LayerStates):
    """One `LayerMemory` per block. `size` may be changed between segments, e.g. to evaluate
    with a longer memory than the one trained with (§4: longer evaluation contexts)."""

    @property
    def size(self) -> int:
        return self[0].size if self else 0

    @size.setter
    def size(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"a memory size must not be negative, got {value}")
        for layer in self:
            layer.size = value


@STACKS.register("xl")
class TransformerXL(Transformer):
    """Segment recurrence: attention over a memory of earlier segments (Dai et al. 2019).

    `depth` blocks with relative attention over memory + segment.

    Call `stack(x, causal=True, state=state)` segment after segment with one state; without a
    state each call is a segment with an empty memory. Training reads the text as ordered
    streams (`ordered_streams`), so the memory holds the real preceding text.
    """

    fixed_position = "relative"
    ordered_streams = True

    @dataclass
    class Options:
        memory: int = option(256, "hidden states kept from earlier segments", at_least=0)

    def make_block(self, cfg: ModelConfig) -> Block:
        return Block(cfg, MemoryAttention(cfg, cfg.options_for(self).memory))

    @classmethod
    def check_config(cls, cfg: ModelConfig) -> None:
        if cfg.qkv_conv:  # keys come from memory + segment: the convolution is not defined there
            raise ConfigError("--qkv-conv applies to self-attention over the layer's own input; "
                              "--model xl attends over a memory")  # fmt: skip

    @classmethod
    def describe(cls, cfg: ModelConfig) -> str:
        return f"{super().describe(cfg)}, memory {cfg.options['xl']['memory']}"

    def new_state(self, capacity: int = 0, memory: int | None = None) -> SegmentMemory:
        """An empty memory per layer (of `memory` positions, default the configured size);
        `capacity`, the window of a key/value cache, does not bound it."""
        state = SegmentMemory(block.new_state(capacity) for block in self.blocks)
        if memory is not None:
            state.size = memory
        return state
