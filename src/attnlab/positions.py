"""Position information: added to the input (learned, sinusoidal) or inside attention
(rotary rotates queries and keys, ALiBi biases the scores).

Without any of them self-attention is permutation-equivariant: it sees a set, not a sequence.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_table(length: int, width: int, start: int = 0) -> Tensor:
    """Vaswani et al. 2017, §3.5: PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...)."""
    position = torch.arange(start, start + length, dtype=torch.float64)[:, None]
    frequency = torch.exp(-math.log(10000.0) * torch.arange(0, width, 2) / width)
    table = torch.zeros(length, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table.float()


class LearnedPositions(nn.Module):
    """One trained vector per position (GPT-2, "Transformers from scratch")."""

    def __init__(self, context: int, width: int):
        super().__init__()
        self.embedding = nn.Embedding(context, width)

    def forward(self, t: int, start: int = 0) -> Tensor:
        idx = torch.arange(start, start + t, device=self.embedding.weight.device)
        return self.embedding(idx)  # (t, width)


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids; defined for any position, so longer texts need no new parameters."""

    def __init__(self, context: int, width: int):
        super().__init__()
        self.width = width
        self.register_buffer("table", sinusoidal_table(context, width), persistent=False)

    def forward(self, t: int, start: int = 0) -> Tensor:
        if start + t > self.table.shape[0]:
            return sinusoidal_table(t, self.width, start).to(self.table.device)
        return self.table[start : start + t]


class Rotary(nn.Module):
    """Rotary position embedding (Su et al. 2021, eq. 34): rotate each pair
    (x_{2i}, x_{2i+1}) of a query or key at position p by the angle p·θ_i, θ_i = 10000^(-2i/d).

    The score q_m·k_n then depends on positions only through m - n.
    """

    def __init__(self, head_dim: int, context: int, base: float = 10000.0):
        super().__init__()
        self.base = base
        theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("theta", theta.float(), persistent=False)
        self._build(context)

    def _build(self, length: int) -> None:
        angle = torch.arange(length, dtype=torch.float64)[:, None] * self.theta.double()
        self.register_buffer("cos", angle.cos().float(), persistent=False)  # (length, d/2)
        self.register_buffer("sin", angle.sin().float(), persistent=False)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """x: (b, h, t, d) at positions start … start+t-1."""
        t = x.shape[-2]
        if start + t > self.cos.shape[0]:
            self._build(2 * (start + t))
            self.cos, self.sin = self.cos.to(x.device), self.sin.to(x.device)
        cos = self.cos[start : start + t].to(x.dtype)
        sin = self.sin[start : start + t].to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def alibi_slopes(heads: int) -> Tensor:
    """Press et al. 2022: the geometric sequence 2^(-8/n), 2^(-16/n), …; for a head count that
    is not a power of two, the slopes of the next power of two fill in (their §3)."""

    def power_of_two(n: int) -> list[float]:
        first = 2.0 ** (-8.0 / n)
        return [first ** (i + 1) for i in range(n)]

    closest = 2 ** math.floor(math.log2(heads))
    slopes = power_of_two(closest)
    if closest < heads:
        slopes += power_of_two(2 * closest)[0::2][: heads - closest]
    return torch.tensor(slopes)


def alibi_bias(heads: int, t: int, s: int, causal: bool, device: torch.device) -> Tensor:
    """(heads, t, s) additive bias -m_h·|i - j| for queries at the last t of s positions."""
    rows = torch.arange(s - t, s, device=device)[:, None]
    cols = torch.arange(s, device=device)[None, :]
    distance = (rows - cols).abs().float()
    return -alibi_slopes(heads).to(device)[:, None, None] * distance


def build_positions(kind: str, context: int, width: int) -> nn.Module | None:
    """The module that adds positions to the input, or None when attention handles them."""
    if kind == "learned":
        return LearnedPositions(context, width)
    if kind == "sinusoidal":
        return SinusoidalPositions(context, width)
    return None
