"""The Differentiable Neural Computer (Graves et al. 2016, Nature; equations from its
Methods): a controller with one write head and R read heads on an N × W memory, which
allocates free slots by usage and remembers the order of its writes in a link matrix.

Every step, with the previous read weightings w^r_{t−1} and write weighting w^w_{t−1}:

    ψ = Π_i (1 − f^i w^{r,i}_{t−1})                     retention, from the free gates f
    u_t = (u_{t−1} + w^w_{t−1} − u_{t−1} ∘ w^w_{t−1}) ∘ ψ     usage
    φ = slots sorted by usage, least used first
    a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i]                 allocation weighting
    w^w = g^w (g^a a + (1 − g^a) C(M_{t−1}, k^w, β^w))  write weighting
    M_t = M_{t−1} ∘ (1 − w^w eᵀ) + w^w vᵀ                erase, then write
    L_t[i,j] = (1 − w^w[i] − w^w[j]) L_{t−1}[i,j] + w^w[i] p_{t−1}[j],  L_t[i,i] = 0
    p_t = (1 − Σ_i w^w[i]) p_{t−1} + w^w                precedence
    f^i = L_t w^{r,i}_{t−1},  b^i = L_tᵀ w^{r,i}_{t−1}    forward and backward weightings
    w^{r,i} = π^i_1 b^i + π^i_2 C(M_t, k^{r,i}, β^{r,i}) + π^i_3 f^i,   r^i = M_tᵀ w^{r,i}

The read modes π^i are a softmax over (backward, content, forward); strengths pass through
oneplus; gates, erase and free gates through a sigmoid. Ties in usage are broken by slot
index (a stable sort). The dense link matrix costs N² per step (the sparse one of the
paper's supplement is not built). Memory, usage, links and weightings start at zero, as in
the paper; the head parameters are clipped to ±20 like the NTM's (`ntm.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig, option
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
    read,
)
from .sequence import SequenceModel


def retention(free_gates: Tensor, read_weights: Tensor) -> Tensor:
    """ψ = Π_i (1 − f^i w^{r,i}): (b, R), (b, R, N) -> (b, N)."""
    return (1 - free_gates[..., None] * read_weights).prod(dim=1)


def update_usage(usage: Tensor, write_weights: Tensor, kept: Tensor) -> Tensor:
    """u_t = (u + w^w − u ∘ w^w) ∘ ψ: (b, N) each -> (b, N)."""
    return (usage + write_weights - usage * write_weights) * kept


def allocation(usage: Tensor) -> Tensor:
    """a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i], φ the slots by rising usage (ties: lower slot
    first): (b, N) -> (b, N). Gradients flow through the usages, not the order."""
    ordered, order = usage.sort(dim=-1, stable=True)
    before = F.pad(ordered.cumprod(dim=-1)[..., :-1], (1, 0), value=1.0)  # Π_{i<j} u[φ_i]
    return torch.zeros_like(usage).scatter(-1, order, (1 - ordered) * before)


def update_links(links: Tensor, write_weights: Tensor, precedence: Tensor) -> Tensor:
    """L_t[i,j] = (1 − w[i] − w[j]) L[i,j] + w[i] p_{t−1}[j], with a zero diagonal:
    (b, N, N), (b, N), (b, N) -> (b, N, N)."""
    w_i, w_j = write_weights[:, :, None], write_weights[:, None, :]
    links = (1 - w_i - w_j) * links + w_i * precedence[:, None, :]
    off_diagonal = 1 - torch.eye(links.shape[-1], dtype=links.dtype, device=links.device)
    return links * off_diagonal


def update_precedence(precedence: Tensor, write_weights: Tensor) -> Tensor:
    """p_t = (1 − Σ_i w[i]) p_{t−1} + w: (b, N) each -> (b, N)."""
    return (1 - write_weights.sum(dim=-1, keepdim=True)) * precedence + write_weights


def directional_weights(links: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """(forward f = L w, backward b = Lᵀ w) for every read head: (b, N, N), (b, R, N) ->
    two (b, R, N). Forward moves to the slots written after those read, backward before."""
    return read_weights @ links.transpose(1, 2), read_weights @ links


@STACKS.register("dnc")
class DNCStack(RecurrentStack):
    """Differentiable Neural Computer (Graves et al. 2016): allocation and temporal links.

    A controller of `--width` units, one write head and `read_heads` read heads on `slots` ×
    `slot_width`, with usage-based allocation and temporal links."""

    @dataclass
    class Options(MemoryOptions):
        slots: int = option(64, "memory locations N (the link matrix is N × N)", at_least=1)

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        o = cfg.options_for(self)
        self.slots, self.slot_width, self.reads, self.clip = (
            o.slots, o.slot_width, o.read_heads, o.clip,
        )  # fmt: skip
        r, w = o.read_heads, o.slot_width
        self.interface = Interface({
            "read_keys": ("none", r * w), "write_key": ("none", w), "write_vector": ("none", w),
            "read_strengths": ("oneplus", r), "write_strength": ("oneplus", 1),
            "erase": ("sigmoid", w), "free_gates": ("sigmoid", r),
            "allocation_gate": ("sigmoid", 1), "write_gate": ("sigmoid", 1),
            "read_modes": ("none", 3 * r),
        })  # fmt: skip
        self.controller = Controller(cfg.width + r * w, cfg.width, o.controller)
        self.to_interface = nn.Linear(cfg.width, self.interface.size)
        self.to_output = nn.Linear(cfg.width + r * w, cfg.width)

    def memory_slots(self) -> int:
        return self.slots

    def initial(self, batch: int, like: Tensor) -> Carry:
        n, r, w = self.slots, self.reads, self.slot_width
        zeros = like.new_zeros
        return {
            **self.controller.initial(batch, like),
            "memory": zeros(batch, n, w),
            "reads": zeros(batch, r, w),
            "read_weights": zeros(batch, r, n),
            "write_weights": zeros(batch, n),
            "usage": zeros(batch, n),
            "precedence": zeros(batch, n),
            "links": zeros(batch, n, n),
        }

    def parse_interface(self, out: Tensor) -> dict[str, Tensor]:
        """The controller output (b, width) as the interface vector ξ's parts, squashed to
        their ranges (DNC, Methods: "Interface parameters"): strengths through oneplus, gates
        and the erase vector through a sigmoid, read modes through a softmax per head."""
        b, r, w = out.shape[0], self.reads, self.slot_width
        xi = self.interface(clip_parameters(self.to_interface(out), self.clip))
        return {
            **xi, "read_keys": xi["read_keys"].view(b, r, w),
            "write_key": xi["write_key"].view(b, 1, w), "erase": xi["erase"].view(b, 1, w),
            "write_vector": xi["write_vector"].view(b, 1, w),
            "read_modes": torch.softmax(xi["read_modes"].view(b, r, 3), dim=-1),
        }  # fmt: skip

    def step(self, x: Tensor, carry: Carry, trace: dict | None) -> tuple[Tensor, Carry]:
        inputs = torch.cat((x, carry["reads"].flatten(1)), dim=-1)
        out, controller = self.controller(inputs, carry)
        xi = self.parse_interface(out)
        read_before, memory = carry["read_weights"], carry["memory"]
        kept = retention(xi["free_gates"], read_before)
        usage = update_usage(carry["usage"], carry["write_weights"], kept)
        found = content_weights(memory, xi["write_key"], xi["write_strength"])[:, 0]
        g_a, g_w = xi["allocation_gate"], xi["write_gate"]
        write = g_w * (g_a * allocation(usage) + (1 - g_a) * found)  # (b, N)
        memory = erase_and_add(memory, write[:, None], xi["erase"], xi["write_vector"])
        links = update_links(carry["links"], write, carry["precedence"])
        forward, backward = directional_weights(links, read_before)
        content = content_weights(memory, xi["read_keys"], xi["read_strengths"])
        modes = xi["read_modes"]  # (b, R, 3): backward, content, forward
        read_weights = modes[..., :1] * backward + modes[..., 1:2] * content
        read_weights = read_weights + modes[..., 2:] * forward
        reads = read(memory, read_weights)
        y = self.to_output(torch.cat((out, reads.flatten(1)), dim=-1))
        if trace is not None:
            trace.update(read=read_weights, write=write[:, None])
        carry = {
            **controller, "memory": memory, "reads": reads, "read_weights": read_weights,
            "write_weights": write, "usage": usage, "links": links,
            "precedence": update_precedence(carry["precedence"], write),
        }  # fmt: skip
        return clip_parameters(y, self.clip), carry


@MODELS.register("dnc")
class DNC(SequenceModel):
    """A Differentiable Neural Computer as a sequence model on vectors (Graves et al. 2016).

    `DNC(cfg, inputs, outputs)`: `cfg.width` is the controller's size and `cfg.options["dnc"]`
    holds the memory's (`DNCStack.Options`); the layer stack is always the DNC. `DNC()`: an
    LSTM controller of 100 units, memory 64 × 20, one read head.
    """

    title = "Differentiable Neural Computer"
    stack_kind = "dnc"
    default_config = {"model": "dnc", "width": 100, "heads": 1}
