"""A sequence model on vectors: one output vector per input vector, read causally.

The algorithmic tasks of the Neural Turing Machine paper (copy, repeat copy, associative recall,
priority sort; Graves et al. 2014, §4) feed binary vectors, not token ids, and score every
output bit. A `SequenceModel` maps the input vectors into the stack's width with a linear layer
(plus the stack's positions, if it has any), runs any causal layer stack — a transformer, or a
recurrent stack with an external memory (`ntm`, `dnc`) or without (`lstm`) — and maps each
position back out to one logit per output bit.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..block import norm
from ..config import ConfigError, ModelConfig
from ..registry import MODELS
from .base import Model
from .stack import InputEmbedding, build_stack, init_weights, reads_segments


class VectorEmbedding(InputEmbedding):
    """Input vectors (b, t, inputs) mapped to the width, plus position vectors where the
    encoding adds them to the input: a token embedding whose lookup is a linear map."""

    def __init__(self, cfg: ModelConfig, inputs: int):
        super().__init__(cfg)
        self.tokens = nn.Linear(inputs, cfg.width)  # in place of the token table


def with_stack(cfg: ModelConfig, kind: str) -> ModelConfig:
    """`cfg` with `kind` as its layer stack; options of another stack are dropped."""
    if cfg.model == kind:
        return cfg
    return ModelConfig.from_dict({**cfg.to_dict(), "model": kind, "options": {}})


@MODELS.register("sequence")
class SequenceModel(Model):
    """Vectors (b, t, inputs) -> one logit per output bit and position (b, t, outputs).

    Causal: the output at t depends on the inputs up to t. `forward(x, state)` continues from
    a state of `new_state()`, as a language model's cache does.
    """

    needs = frozenset({"causal"})
    title = "sequence model"
    stack_kind: ClassVar[str | None] = None  # a subclass that always holds one kind of stack
    default_config: ClassVar[dict[str, Any]] = {}  # its settings when no config is given

    def __init__(self, cfg: ModelConfig | None = None, inputs: int = 10, outputs: int = 8):
        if cfg is None:
            cfg = ModelConfig(**self.default_config)
        if self.stack_kind is not None:
            cfg = with_stack(cfg, self.stack_kind)
        super().__init__(cfg)
        if inputs < 1 or outputs < 1:
            raise ConfigError(f"a {self.title} needs inputs and outputs of at least 1, got "
                              f"{inputs} and {outputs}")  # fmt: skip
        self.inputs, self.outputs = inputs, outputs
        self.embedding = VectorEmbedding(cfg, inputs)
        self.stack = build_stack(cfg)
        self.recurrent = getattr(self.stack, "recurrent", False)
        # A recurrent stack's output is no residual stream, so it needs no final norm.
        pre_norm = cfg.norm == "pre" and not self.recurrent
        self.norm = norm(cfg) if pre_norm else nn.Identity()
        self.head = nn.Linear(cfg.width, outputs)
        if not self.recurrent:  # recurrent stacks keep PyTorch's and their own initialisation
            init_weights(self, cfg.depth)

    def config_dict(self) -> dict[str, Any]:
        return {"model": self.cfg.to_dict(), "inputs": self.inputs, "outputs": self.outputs}

    def example_inputs(self, batch: int, length: int) -> tuple[Tensor, ...]:
        return (torch.randint(0, 2, (batch, length, self.inputs)).float(),)

    def max_length(self) -> int | None:
        """The longest sequence the model can read (None: any)."""
        return None if self.recurrent or reads_segments(self.cfg.model) else self.cfg.context

    def memory_slots(self) -> int | None:
        """How many vectors its external memory holds (None: it has none)."""
        return self.stack.memory_slots() if self.recurrent else None

    def forward(self, x: Tensor, state=None) -> Tensor:
        """`state` (from `new_state`) holds what earlier calls read; `x` continues it."""
        if x.dim() != 3 or x.shape[-1] != self.inputs:
            raise ValueError(f"expected inputs (b, t, {self.inputs}), got {tuple(x.shape)}")
        limit = self.max_length()
        start = state.length if state is not None else 0
        if limit is not None and start + x.shape[1] > limit:
            raise ValueError(f"{start + x.shape[1]} positions exceed the context of {limit}")
        h = self.embedding(x, start)
        h = self.stack(h, causal=True, state=state)
        return self.head(self.norm(h))

    def new_state(self, record: bool = False):
        """An empty state: a recurrent stack's carry (with `record`, one that keeps every
        step's memory weightings), or the key/value caches of a transformer."""
        if self.recurrent:
            return self.stack.new_state(record=record)
        return self.stack.new_state(self.cfg.context)

    def loss(self, x: Tensor, targets: Tensor, scored: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Binary cross-entropy (nats per bit) over the scored positions `scored` (t,) bool;
        statistics: bits wrong per sequence after thresholding, and the NTM paper's cost per
        sequence in bits (its learning curves)."""
        logits = self(x)[:, scored].float()  # (b, answer positions, outputs)
        wanted = targets[:, scored]
        loss = F.binary_cross_entropy_with_logits(logits, wanted)
        with torch.no_grad():
            wrong = bits_wrong(logits, wanted).float().mean()
            cost = loss * wanted[0].numel() / math.log(2)
        return loss + self.stack.aux_loss, {"bit_error": wrong.item(), "cost_bits": cost.item()}

    @torch.no_grad()
    def memory_weightings(self, x: Tensor) -> dict[str, Tensor]:
        """Every step's read and write weightings over the memory slots for inputs x:
        name -> (b, t, heads, slots); empty for a model without an external memory."""
        if self.memory_slots() is None:
            return {}
        state = self.new_state(record=True)
        self(x, state)
        return state.weightings()


def bits_wrong(logits: Tensor, targets: Tensor) -> Tensor:
    """Bits wrong per sequence, outputs thresholded at 0.5 (a logit above 0): (b, t, n) -> (b,)."""
    return ((logits > 0) != (targets > 0.5)).sum(dim=(1, 2))


def sequence_model(cfg: ModelConfig, inputs: int, outputs: int) -> SequenceModel:
    """The model kind that holds `cfg`'s stack: `NTM` for ntm, `DNC` for dnc, else the plain
    sequence model."""
    kinds = [cls for cls in MODELS.values() if issubclass(cls, SequenceModel)]
    cls = next((cls for cls in kinds if cls.stack_kind == cfg.model), SequenceModel)
    return cls(cfg, inputs, outputs)
