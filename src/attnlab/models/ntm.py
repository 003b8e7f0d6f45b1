"""The Neural Turing Machine (Graves, Wayne & Danihelka 2014): a controller with read and
write heads on an N × W memory, addressed by content and by location.

Each head turns the controller's output into a key k, a key strength β ≥ 0, an interpolation
gate g ∈ (0, 1), a shift distribution s over −r…r and a sharpening exponent γ ≥ 1, and
addresses the memory in four steps (§3.3):

    w^c = softmax_i(β K(k, M[i]))                      content (eq. 5-6, `memory.py`)
    w^g = g w^c + (1 − g) w_{t−1}                      interpolation (eq. 7)
    w̃[i] = Σ_j w^g[j] s[(i − j) mod N]                 circular convolution (eq. 8)
    w[i] = w̃[i]^γ / Σ_j w̃[j]^γ                          sharpening (eq. 9)

Read heads return r = Σ_i w[i] M[i] (eq. 2); write heads erase with e ∈ (0, 1)^W and then
add a (eq. 3-4). Reads see the memory before this step's writes, and the output is a linear
map of the controller's output and the new read vectors.

The stable choices of Collier & Beel 2018 ("Implementing Neural Turing Machines"), all taken
here: the memory starts as a small constant (1e-6; in their comparison it converged about twice
as fast as a learned or random start) that, as in their code, is then learned; the initial
read vectors and weightings are learned; the head parameters and outputs are clipped to ±20;
keys and added vectors pass through tanh; the LSTM controller's forget gates start open; the
gradient norm is clipped by training (`--grad-clip`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ConfigError, ModelConfig, option
from ..registry import MODELS, STACKS
from .memory import (
    Carry,
    Controller,
    Interface,
    MemoryOptions,
    RecurrentStack,
    clip_parameters,
    content_weights,
    erase_and_add,
    expand_start,
    learned_start,
    read,
)
from .sequence import SequenceModel

MEMORY_START = 1e-6  # Collier & Beel 2018's constant memory initialisation
TINY = 1e-30  # the floor of w̃ before its logarithm: w̃^γ underflows long before this does


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """w^g = g w^c + (1 − g) w_{t−1} (eq. 7): (b, H, N), (b, H, N), (b, H) -> (b, H, N)."""
    return torch.lerp(previous, content, gate[..., None])


def shift(weights: Tensor, kernel: Tensor) -> Tensor:
    """Circular convolution w̃[i] = Σ_k s[k] w[(i − k) mod N] over the shifts k = −r…r
    (eq. 8); kernel (b, H, 2r + 1) holds s[−r], …, s[r]. Shifting by k moves the weight of
    slot j to slot j + k, which is `roll` by k (the fastest of the ways tried on a CPU)."""
    r = kernel.shape[-1] // 2
    shifted = (torch.roll(weights, k, dims=-1) if k else weights for k in range(-r, r + 1))
    return sum(kernel[..., k, None] * w for k, w in enumerate(shifted))


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """w[i] = w̃[i]^γ / Σ_j w̃[j]^γ (eq. 9), computed as softmax(γ log w̃): the same numbers,
    but w̃^γ with γ ≈ 20 underflows in float32 where the softmax does not."""
    return torch.softmax(gamma[..., None] * weights.clamp_min(TINY).log(), dim=-1)


@STACKS.register("ntm")
class NTMStack(RecurrentStack):
    """Neural Turing Machine (Graves et al. 2014): heads addressed by content and location.

    A controller of `--width` units with read and write heads on `slots` × `slot_width`."""

    @dataclass
    class Options(MemoryOptions):
        write_heads: int = option(1, "write heads", at_least=1)
        shift_range: int = option(1, "largest location shift r: shifts −r…r", at_least=0)

    @classmethod
    def check_config(cls, cfg: ModelConfig) -> None:
        super().check_config(cfg)
        options = cfg.options["ntm"]
        if 2 * options["shift_range"] + 1 > options["slots"]:
            raise ConfigError(f"--ntm.shift-range {options['shift_range']} shifts further "
                              f"than --ntm.slots {options['slots']} allow")  # fmt: skip

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        o = cfg.options_for(self)
        self.slots, self.slot_width, self.clip = o.slots, o.slot_width, o.clip
        self.reads, self.writes = o.read_heads, o.write_heads
        heads, w, self.shifts = self.reads + self.writes, o.slot_width, 2 * o.shift_range + 1
        self.interface = Interface({
            "key": ("tanh", heads * w), "add": ("tanh", self.writes * w),
            "strength": ("softplus", heads), "sharpening": ("softplus", heads),
            "gate": ("sigmoid", heads), "erase": ("sigmoid", self.writes * w),
            "shift": ("none", heads * self.shifts),
        })  # fmt: skip
        self.controller = Controller(cfg.width + self.reads * w, cfg.width, o.controller)
        self.to_heads = nn.Linear(cfg.width, self.interface.size)
        self.to_output = nn.Linear(cfg.width + self.reads * w, cfg.width)
        self.start_reads = learned_start(self.reads, w)
        self.start_weights = learned_start(heads, o.slots)
        # Learned from the constant, as Collier & Beel's (a trainable variable). Held fixed,
        # the slots stay alike while the write head is still spread out: content addressing
        # cannot tell them apart, a read is the same wherever a head looks, so the start
        # weightings get almost no gradient (about 1e-11, under Adam's ε), and the write head
        # never focuses. The start memory's gradient differs from slot to slot at once.
        self.start_memory = nn.Parameter(torch.full((o.slots, w), MEMORY_START))

    def memory_slots(self) -> int:
        return self.slots

    def initial(self, batch: int, like: Tensor) -> Carry:
        return {
            **self.controller.initial(batch, like),
            "memory": expand_start(self.start_memory, batch, like),
            "reads": torch.tanh(expand_start(self.start_reads, batch, like)),
            "weights": torch.softmax(expand_start(self.start_weights, batch, like), dim=-1),
        }

    def head_parameters(self, out: Tensor) -> dict[str, Tensor]:
        """The controller output (b, width) as every head's parameters in their ranges: key
        (b, H, W), strength β ≥ 0, gate g ∈ (0, 1), sharpening γ ≥ 1 (b, H), shift
        distribution (b, H, 2r + 1); the write heads' erase and add vectors (b, writes, W).
        Keys and added vectors pass through tanh (Collier & Beel 2018)."""
        b, w = out.shape[0], self.slot_width
        p = self.interface(clip_parameters(self.to_heads(out), self.clip))
        return {
            **p, "key": p["key"].view(b, -1, w), "sharpening": 1 + p["sharpening"],
            "shift": torch.softmax(p["shift"].view(b, -1, self.shifts), dim=-1),
            "erase": p["erase"].view(b, -1, w), "add": p["add"].view(b, -1, w),
        }  # fmt: skip

    def step(self, x: Tensor, carry: Carry, trace: dict | None) -> tuple[Tensor, Carry]:
        memory = carry["memory"]  # (b, N, W)
        inputs = torch.cat((x, carry["reads"].flatten(1)), dim=-1)
        out, controller = self.controller(inputs, carry)
        p = self.head_parameters(out)
        content = content_weights(memory, p["key"], p["strength"])
        gated = interpolate(content, carry["weights"], p["gate"])
        weights = sharpen(shift(gated, p["shift"]), p["sharpening"])  # (b, H, N)
        reads = read(memory, weights[:, : self.reads])  # (b, R, W)
        memory = erase_and_add(memory, weights[:, self.reads :], p["erase"], p["add"])
        y = self.to_output(torch.cat((out, reads.flatten(1)), dim=-1))
        if trace is not None:
            trace.update(read=weights[:, : self.reads], write=weights[:, self.reads :])
        carry = {**controller, "memory": memory, "reads": reads, "weights": weights}
        return clip_parameters(y, self.clip), carry


@MODELS.register("ntm")
class NTM(SequenceModel):
    """A Neural Turing Machine as a sequence model on vectors (Graves et al. 2014).

    `NTM(cfg, inputs, outputs)`: `cfg.width` is the controller's size and `cfg.options["ntm"]`
    holds the memory's (`NTMStack.Options`); the layer stack is always the NTM. `NTM()` is the
    paper's copy-task machine: an LSTM controller of 100 units, memory 128 × 20, one read and
    one write head, 8-bit vectors with 2 control channels in, 8 bits out.
    """

    title = "Neural Turing Machine"
    stack_kind = "ntm"
    default_config = {"model": "ntm", "width": 100, "heads": 1}
