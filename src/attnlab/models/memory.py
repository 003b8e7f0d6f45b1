"""What the external-memory networks share: reading and writing a memory matrix by soft
weightings, content addressing, and a layer stack that reads its input one position at a time.

The Neural Turing Machine (Graves et al. 2014, `ntm.py`) and the Differentiable Neural Computer
(Graves et al. 2016, `dnc.py`) keep a memory M of N slots of width W beside a controller
network. At every step the controller emits, for each head, the parameters of a weighting
w over the N slots (a distribution: w ≥ 0, Σ w = 1); a read head returns r = Mᵀw, a write
head erases and adds along its weighting. Content addressing is the same in both papers:

    K(k, M[i]) = k·M[i] / (‖k‖ ‖M[i]‖)                   (NTM eq. 6, cosine similarity)
    w^c[i] = exp(β K(k, M[i])) / Σ_j exp(β K(k, M[j]))   (NTM eq. 5; DNC's C(M, k, β))

A recurrent stack carries its state (controller, memory, weightings) from step to step. The
state handed in by the caller (`new_state`) keeps it across calls, like a key/value cache:
generation feeds one position at a time. A state made with `record=True` also keeps every
step's read and write weightings, the memory-access pictures of both papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError, ModelConfig, option

# The least norm a key or slot is divided by: an all-zero one has similarity 0, not 0/0.
COSINE_EPS = 1e-8

Carry = dict[str, Tensor]


def content_weights(memory: Tensor, keys: Tensor, strengths: Tensor) -> Tensor:
    """softmax over slots of β · cosine(k, M[i]) (NTM eq. 5-6; DNC's content lookup C).

    memory (b, N, W), keys (b, H, W), strengths β (b, H) -> weightings (b, H, N)."""
    dots = torch.bmm(keys, memory.transpose(1, 2))  # (b, H, N)
    norms = keys.norm(dim=-1, keepdim=True) * memory.norm(dim=-1)[:, None, :]
    return torch.softmax(strengths[..., None] * dots / norms.clamp_min(COSINE_EPS), dim=-1)


def read(memory: Tensor, weights: Tensor) -> Tensor:
    """r = Σ_i w[i] M[i] (NTM eq. 2; DNC r = Mᵀw): (b, N, W), (b, H, N) -> (b, H, W)."""
    return torch.bmm(weights, memory)


def erase_and_add(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Every write head erases, then every head adds (NTM eq. 3-4; DNC's write):

        M ← M ∘ Π_h (1 − w_h e_hᵀ) + Σ_h w_h a_hᵀ

    memory (b, N, W), weights (b, H, N), erase e and add a (b, H, W) -> (b, N, W)."""
    if weights.shape[1] == 1:  # one head: M + w (a − M ∘ e), the same in fewer passes over M
        return memory + weights[:, 0, :, None] * (add - memory * erase)
    kept = (1 - weights[..., None] * erase[:, :, None, :]).prod(dim=1)  # (b, N, W)
    return memory * kept + weights.transpose(1, 2) @ add


def oneplus(x: Tensor) -> Tensor:
    """1 + log(1 + eˣ): a strength in [1, ∞) (DNC, Methods)."""
    return 1 + F.softplus(x)


def lstm_forget_bias(cell: nn.Module) -> None:
    """Start an LSTM's forget gates open (bias 1, Gers et al. 2000; Collier & Beel 2018's
    controller), so early gradients pass through its cell. Gate order: input, forget, ..."""
    with torch.no_grad():
        for name, bias in cell.named_parameters():
            if name.startswith("bias_ih"):
                bias.zero_()
                bias[bias.shape[0] // 4 : bias.shape[0] // 2] = 1.0
            elif name.startswith("bias_hh"):
                bias.zero_()


@dataclass
class RecurrentState:
    """What a recurrent stack carries from one call to the next; `length`: positions read.

    `bounded`: generation treats it like a key/value cache (the window moves on at the
    context and the state is rebuilt from the kept tokens), so cached and uncached generation
    see the same tokens. With `record`, every step appends its weightings to `trace`."""

    record: bool = False
    carry: Carry | None = None
    length: int = 0
    batch: int = 0
    trace: list[dict[str, Tensor]] = field(default_factory=list)
    bounded: ClassVar[bool] = True

    def reset(self) -> None:
        self.carry, self.length, self.trace = None, 0, []

    def weightings(self) -> dict[str, Tensor]:
        """The recorded weightings, stacked over time: name -> (b, t, heads, N)."""
        if not self.trace:
            return {}
        return {name: torch.stack([s[name] for s in self.trace], 1) for name in self.trace[0]}


def check_right_padded(mask: Tensor | None) -> None:
    """A recurrent stack reads left to right, so padding must follow the real positions:
    then the real positions never see it, and no mask is needed."""
    if mask is not None and (mask[:, 1:] & ~mask[:, :-1]).any():
        raise ValueError("a recurrent stack takes padding after the real positions only")


@dataclass
class MemoryOptions:
    """The settings every external memory has (`--ntm.slots`, `--dnc.slots`, ...)."""

    slots: int = option(128, "memory locations N", at_least=1)
    slot_width: int = option(20, "width W of each memory location", at_least=1)
    read_heads: int = option(1, "read heads", at_least=1)
    controller: str = option(
        "lstm", "controller: an LSTM cell or a feed-forward layer", choices=("lstm", "feedforward")
    )
    clip: float = option(
        20.0, "clip the controller's head parameters and outputs to ±clip (0: never)", at_least=0
    )


class RecurrentStack(nn.Module):
    """Base of the layer stacks that read one position at a time (`STACKS`): x (b, t, width)
    -> (b, t, width), always causal, no attention core and no position encoding.

    A subclass gives `initial(batch, like)`, the carry before the first position, and
    `step(x_t, carry, trace)`, one position: (y_t, new carry), adding its weightings to
    `trace` when that is a dict. Or it overrides `run` to read the whole sequence at once.
    """

    needs: ClassVar[frozenset[str]] = frozenset()
    fixed_position = "none"  # the order of reading is the position
    recurrent = True

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.width = cfg.width
        self.aux_loss: Tensor | float = 0.0
        self.stats: dict[str, float] = {}
        self.compiled_step: Callable | None = None

    def compile_step(self, backend: str = "inductor") -> None:
        """Compile `step` with torch.compile: each step's many small operations become a few
        fused kernels (about 1.6× faster training on a CPU, after a minute of compiling),
        while the loop over positions stays in Python, so one graph serves every length."""
        self.compiled_step = torch.compile(self.step, backend=backend)

    @classmethod
    def check_config(cls, cfg: ModelConfig) -> None:
        if cfg.attention != "dense":
            raise ConfigError(
                f"--model {cls.name} holds no attention core; --attention {cfg.attention} "
                "applies to the transformer stacks (transformer, universal, xl)"
            )

    @classmethod
    def describe(cls, cfg: ModelConfig) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in cfg.options[cls.name].items())

    def memory_slots(self) -> int | None:
        """How many vectors the memory holds (None: no external memory)."""
        return None

    def new_state(self, capacity: int = 0, record: bool = False) -> RecurrentState:
        return RecurrentState(record=record)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        state: RecurrentState | None = None,
    ) -> Tensor:
        """`causal` is accepted for the stack interface: a recurrent stack always is."""
        check_right_padded(mask)
        carry = state.carry if state is not None else None
        if carry is not None and state.batch != x.shape[0]:
            raise ValueError("the state holds another batch size; start a new state")
        if carry is None:
            carry = self.initial(x.shape[0], x)
        trace = state.trace if state is not None and state.record else None
        y, carry = self.run(x, carry, trace)
        if state is not None:
            state.carry, state.length, state.batch = carry, state.length + x.shape[1], x.shape[0]
        return y

    @torch.compiler.disable  # traced, the loop would be a new graph for every length
    def run(self, x: Tensor, carry: Carry, trace: list | None) -> tuple[Tensor, Carry]:
        step = self.step
        if self.compiled_step is not None and trace is None and torch.is_grad_enabled():
            step = self.compiled_step  # training; evaluation is too short to pay for a graph
        outputs = []
        for x_t in x.unbind(dim=1):
            record: dict[str, Tensor] | None = {} if trace is not None else None
            y, carry = step(x_t, carry, record)
            outputs.append(y)
            if trace is not None:
                trace.append({k: v.detach() for k, v in record.items()})
        return torch.stack(outputs, dim=1), carry

    def initial(self, batch: int, like: Tensor) -> Carry:
        raise NotImplementedError

    def step(
        self, x: Tensor, carry: Carry, trace: dict[str, Tensor] | None
    ) -> tuple[Tensor, Carry]:
        raise NotImplementedError


class Controller(nn.Module):
    """The network that drives the heads: an LSTM cell (the default of both papers) or a
    feed-forward layer (NTM §4: fewer parameters, more transparent), fed the input and the
    last read vectors. `initial`/`__call__` work on the carry's "h" and "c"."""

    def __init__(self, inputs: int, size: int, kind: str = "lstm"):
        super().__init__()
        self.kind, self.size = kind, size
        if kind == "lstm":
            self.cell: nn.Module = nn.LSTMCell(inputs, size)
            lstm_forget_bias(self.cell)
        else:
            self.cell = nn.Linear(inputs, size)

    def initial(self, batch: int, like: Tensor) -> Carry:
        if self.kind != "lstm":
            return {}
        zeros = like.new_zeros(batch, self.size)
        return {"h": zeros, "c": zeros}

    def forward(self, x: Tensor, carry: Carry) -> tuple[Tensor, Carry]:
        """-> (output (b, size), the controller's part of the new carry)."""
        if self.kind != "lstm":
            return torch.tanh(self.cell(x)), {}
        h, c = self.cell(x, (carry["h"], carry["c"]))
        return h, {"h": h, "c": c}


def learned_start(count: int, size: int) -> nn.Parameter:
    """A learned starting vector per head (Collier & Beel 2018: learned initial read vectors
    and weightings), drawn like theirs: uniform in ±√(6 / (1 + size)) (Glorot). The start
    must not be uniform: with a constant memory, a uniform weighting and addressing that
    treats every slot alike (content, shift, sharpening), all slots would stay the same for
    ever and the heads would never focus."""
    bound = math.sqrt(6 / (1 + size))
    return nn.Parameter(torch.empty(count, size).uniform_(-bound, bound))


def expand_start(start: Tensor, batch: int, like: Tensor) -> Tensor:
    """The start repeated over the batch (a copy: a later step sees no other strides)."""
    return start.to(like.dtype).expand(batch, *start.shape).contiguous()


def clip_parameters(x: Tensor, limit: float) -> Tensor:
    """Collier & Beel 2018 clip the controller's head parameters and outputs to ±limit: a
    weighting cannot become so sharp that its gradient vanishes or explodes."""
    return x.clamp(-limit, limit) if limit > 0 else x


SQUASHES: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": F.softplus, "oneplus": oneplus,
    "none": lambda x: x,
}  # fmt: skip


class Interface:
    """The controller's parameters for the memory, by name: `parts` maps each name to the
    function that squashes it into its range and its size. The linear layer's outputs are
    laid out by squashing function, so each function runs once per step, not once per part.
    Parts that need a softmax over a few values per head are left to the caller ("none")."""

    def __init__(self, parts: dict[str, tuple[str, int]]):
        self.groups: dict[str, dict[str, int]] = {}
        for name, (squash, size) in parts.items():
            self.groups.setdefault(squash, {})[name] = size
        self.sizes = [sum(group.values()) for group in self.groups.values()]
        self.size = sum(self.sizes)

    def __call__(self, raw: Tensor) -> dict[str, Tensor]:
        """(b, size) -> name -> (b, part size), squashed."""
        parts: dict[str, Tensor] = {}
        for (squash, group), chunk in zip(self.groups.items(), raw.split(self.sizes, dim=-1),
                                          strict=True):  # fmt: skip
            pieces = SQUASHES[squash](chunk).split(list(group.values()), dim=-1)
            parts.update(zip(group, pieces, strict=True))
        return parts
