"""Nyström attention: Xiong et al. 2021, "Nyströmformer: A Nyström-Based Algorithm for
Approximating Self-Attention".

Softmax attention S·V with S = softmax(QKᵀ/√d) (n × n) is replaced by its Nyström form (§3):

    Ŝ = softmax(Q K̃ᵀ/√d) · (softmax(Q̃ K̃ᵀ/√d))⁺ · softmax(Q̃ Kᵀ/√d)
          (n × m)              (m × m)                 (m × n)

where the m landmarks Q̃, K̃ are the means of m consecutive segments of the queries and keys.
Multiplying right to left, Ŝ·V costs O(n·m·d + m³) time and O(n·m) memory.

The pseudo-inverse A⁺ is the paper's iteration (after Razavi et al. 2014):
Z₀ = Aᵀ / (‖A‖₁‖A‖∞), Z_{j+1} = ¼ Z_j (13I − A Z_j (15I − A Z_j (7I − A Z_j))).
The paper adds a depthwise convolution over the sequence to the values as a skip
connection (one kernel per head, `--nystrom.conv` taps, 0 for none).

Choices where the published code is loose:
- the initial scale ‖A‖₁‖A‖∞ is each matrix's own, not one maximum over the whole batch,
  so one sequence's kernel never changes another's result;
- segments split the *real* tokens of each sequence into m nearly equal runs and average
  only them, instead of padding the sequence to a multiple of m and averaging the padding
  in: so padding never changes a landmark, a padded batch gives each sequence exactly its
  own output, and n need not be a multiple of m; landmarks with no real token (a sequence
  shorter than m) are masked out of every kernel;
- the whole computation runs in at least float32, even under autocast: the iteration
  multiplies small matrices six times over and loses its accuracy in half precision.

It has no causal form: a landmark mixes all tokens of its segment, future ones included.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig, option
from ..registry import ATTENTION
from .base import Core, softmax_scale


def segment_means(x: Tensor, real: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """Means of x over m runs of consecutive real tokens: (b, h, n, d) -> (b, h, m, d).

    The k-th real token of a sequence with L real tokens falls in segment ⌊k·m/L⌋, so with
    L divisible by m the runs are the paper's equal segments. Also returns (b, m) bool:
    whether a segment holds any token. Sums are scattered by segment, O(n·d).
    """
    b, h, n, d = x.shape
    rank = (real.cumsum(dim=1) - 1).clamp(min=0)  # (b, n): index among the real tokens
    segment = rank * m // real.sum(dim=1, keepdim=True).clamp(min=1)
    segment = (segment + m * torch.arange(b, device=x.device)[:, None]).flatten()  # (b·n,)
    count = torch.zeros(b * m, dtype=x.dtype, device=x.device)
    count = count.index_add(0, segment, real.flatten().to(x.dtype))  # (b·m,)
    weights = real.to(x.dtype) / count[segment].clamp(min=1).view(b, n)  # (b, n): 1/|segment|
    weighted = (x * weights[:, None, :, None]).transpose(1, 2).reshape(b * n, h, d)
    means = x.new_zeros(b * m, h, d).index_add(0, segment, weighted)
    return means.view(b, m, h, d).transpose(1, 2), count.view(b, m) > 0


def iterative_pinv(a: Tensor, iterations: int) -> Tensor:
    """Moore–Penrose pseudo-inverse of each (m, m) matrix in a batch, by the iteration above."""
    batch, m = a.shape[:-2], a.shape[-1]
    a = a.reshape(-1, m, m)  # (b·h, m, m)
    eye = torch.eye(m, dtype=a.dtype, device=a.device)
    norm_1 = a.abs().sum(dim=-2).amax(dim=-1)  # largest column sum, per matrix
    norm_inf = a.abs().sum(dim=-1).amax(dim=-1)  # largest row sum
    z = a.transpose(-2, -1) / (norm_1 * norm_inf)[:, None, None]
    for _ in range(iterations):
        az = a @ z
        inner = torch.baddbmm(15 * eye, az, 7 * eye - az, alpha=-1)  # 15I − AZ(7I − AZ)
        z = z @ torch.baddbmm(3.25 * eye, az, inner, alpha=-0.25)  # ¼ Z (13I − AZ · inner)
    return z.view(*batch, m, m)


def masked_softmax(scores: Tensor, hide: Tensor | None) -> Tensor:
    if hide is not None:
        scores = scores.masked_fill(hide, float("-inf"))
    return scores.softmax(dim=-1)


@ATTENTION.register("nystrom")
class NystromAttention(Core):
    """Landmark approximation of softmax attention, cost linear in n (Xiong et al. 2021)."""

    provides = frozenset({"qk"})  # bidirectional only, no cache, no score bias
    approximates_softmax = True

    @dataclass
    class Options:
        landmarks: int = option(64, "landmarks m", at_least=1)
        pinv_iterations: int = option(
            6, "iterations of the Moore-Penrose pseudo-inverse", at_least=1
        )
        conv: int = option(
            33, "kernel of the depthwise convolution on values (0: none)", at_least=0
        )

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        options = cfg.options_for(self)
        self.landmarks, self.iterations = options.landmarks, options.pinv_iterations
        self.conv = None
        if options.conv:
            # (b, h, n, d) read as h channels of an n × d image: one n-tap kernel per head.
            self.conv = nn.Conv2d(
                cfg.heads,
                cfg.heads,
                (options.conv, 1),
                padding="same",
                groups=cfg.heads,
                bias=False,
            )

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        key_mask: Tensor | None = None,
        causal: bool = False,
        bias: Tensor | None = None,
    ) -> Tensor:
        with full_precision(q) as work:
            kernel_1, inverse, kernel_3, real = self.kernels(work(q), work(k), key_mask)
            # Right to left, so nothing n × n is ever formed.
            out = kernel_1 @ (inverse @ (kernel_3 @ work(v)))
            skip = self.skip(work(v), key_mask)
            out = out if skip is None else out + skip
        return out.to(q.dtype)  # (b, h, n, d)

    def weights(self, q, k, *, key_mask=None, causal=False, bias=None) -> Tensor:
        """Ŝ itself (n × n): what the three kernels stand for, formed only for looking at."""
        with full_precision(q) as work:
            kernel_1, inverse, kernel_3, _ = self.kernels(work(q), work(k), key_mask)
            return (kernel_1 @ inverse @ kernel_3).to(q.dtype)

    def skip(self, v: Tensor, key_mask: Tensor | None = None) -> Tensor | None:
        if self.conv is None:
            return None
        real = real_tokens(key_mask, v)
        return self.conv(v * real[:, None, :, None])  # padding adds nothing

    def kernels(
        self, q: Tensor, k: Tensor, key_mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """softmax(Q K̃ᵀ/√d), (softmax(Q̃ K̃ᵀ/√d))⁺, softmax(Q̃ Kᵀ/√d), and the real tokens."""
        n, d = q.shape[2], q.shape[3]
        real = real_tokens(key_mask, q)
        q = q * softmax_scale(d)
        q_land, present = segment_means(q, real, self.landmarks)  # (b, h, m, d), (b, m)
        k_land, _ = segment_means(k, real, self.landmarks)
        # Masks only where something can be hidden: padded keys, or landmarks left empty by
        # a sequence with fewer real tokens than landmarks.
        hide_keys = hide_landmarks = None
        if key_mask is not None:
            hide_keys = ~real[:, None, None, :]  # (b, 1, 1, n)
        if key_mask is not None or n < self.landmarks:
            hide_landmarks = ~present[:, None, None, :]  # (b, 1, 1, m)
        kernel_1 = masked_softmax(q @ k_land.transpose(-2, -1), hide_landmarks)  # (b, h, n, m)
        kernel_2 = masked_softmax(q_land @ k_land.transpose(-2, -1), hide_landmarks)
        if hide_landmarks is not None:
            # An empty landmark's row is zero too, so A is the real landmarks' kernel padded
            # with zeros and its pseudo-inverse is theirs padded with zeros.
            kernel_2 = kernel_2 * present[:, None, :, None]  # (b, h, m, m)
        kernel_3 = masked_softmax(q_land @ k.transpose(-2, -1), hide_keys)  # (b, h, m, n)
        return kernel_1, iterative_pinv(kernel_2, self.iterations), kernel_3, real

    @classmethod
    def bench_kinds(cls, n: int) -> dict[str, dict[str, Any]]:
        return {"nystrom-64": {"landmarks": 64}, "nystrom-256": {"landmarks": 256}}

    @classmethod
    def keys_per_query(cls, options: Any, n: int) -> int:
        return options.landmarks


def real_tokens(key_mask: Tensor | None, x: Tensor) -> Tensor:
    """(b, n) bool of the real tokens; a sequence of padding only counts as all real, since it
    would otherwise leave every softmax empty."""
    b, n = x.shape[0], x.shape[2]
    if key_mask is None:
        return torch.ones(b, n, dtype=torch.bool, device=x.device)
    real = key_mask.bool().expand(b, n)
    return real | ~real.any(dim=1, keepdim=True)


@contextmanager
def full_precision(x: Tensor):
    """Autocast off, and a function that lifts half-precision tensors to float32."""
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    with torch.autocast(x.device.type, enabled=False):
        yield lambda t: t.to(work)
