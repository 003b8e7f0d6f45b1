"""Sparse attention: the factorized patterns of Child et al. 2019, "Generating Long Sequences
with Sparse Transformers".

Query i attends only to a set S_i of key positions: softmax over j ∈ S_i of q_i·k_j/√d,
applied to v_j (§4.2). With block length l and causal masking, the paper defines two
patterns (§4.3, "two-dimensional factorized attention"), each made of two index sets:

- strided: A¹_i = {j : 0 ≤ i − j ≤ l} (the last l positions and i itself) and
  A²_i = {j : (i − j) mod l = 0} (every l-th position before i);
- fixed:   A¹_i = {j : ⌊j/l⌋ = ⌊i/l⌋} (i's own block) and
  A²_i = {j : j mod l ≥ l − c} (the last c "summary" positions of every block);

plus `local`, the window A¹ of the strided pattern on its own. We implement the paper's
*merged head* (§5, "factorized attention heads"): attend(X, A¹ ∪ A²), one softmax over
S_i = A¹_i ∪ A²_i, so every head sees both sets.
With `causal` every set is cut to j ≤ i, as in the paper. The bidirectional forms are our
extension: the same sets without that cut (|i − j| ≤ l for the window, every block's
summaries for `fixed`).

The training path never forms an n × n matrix. The sequence is cut into n/l blocks of l
positions (padded at the end and masked), and each pattern is a few *parts*, each a small
dense attention over a gathered set of keys:

- window: the key blocks next to a query's block (l·(2 or 3) keys);
- own block: the query's block (l keys);
- columns: position r of every block, for the queries at position r of theirs (n/l keys);
- summaries: the last c positions of every block (c·n/l keys).

The parts are disjoint, so one softmax over their concatenated scores is the softmax over
S_i. With l ≈ √n every query sees O(√n) keys: cost n·√n, or n·l for the local window.
During cached generation (a few queries after s cached keys) the pattern's mask rows are
built for those queries and applied to plain dense attention, which is cheap for few queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import ModelConfig, option
from ..registry import ATTENTION
from .base import Core, allowed_mask, softmax_scale

BENCH_SUMMARIES = 8
BENCH_WINDOW = 64


def pattern_allowed(pattern: str, rows: Tensor, cols: Tensor, block: int, summary: int) -> Tensor:
    """(len(rows), len(cols)) bool: does query position i (rows) see key position j (cols)
    under the bidirectional pattern; `allowed_mask` adds causality and padding."""
    i, j = rows[:, None], cols[None, :]
    if pattern == "fixed":
        allowed = (i // block == j // block) | (j % block >= block - summary)
    else:
        allowed = (i - j).abs() <= block
        if pattern == "strided":
            allowed = allowed | ((i - j) % block == 0)
    return allowed


def neighbour_blocks(x: Tensor, offsets: tuple[int, ...], dim: int) -> Tensor:
    """For each block along `dim`, the blocks at `offsets` from it, concatenated along the
    within-block axis `dim + 1`.

    Blocks beyond either end are zeros (False for masks); callers mask them out.
    """
    n_blocks, reach = x.shape[dim], max(abs(o) for o in offsets)
    padded = F.pad(x, [0, 0] * (x.dim() - dim - 1) + [reach, reach])
    return torch.cat([padded.narrow(dim, reach + o, n_blocks) for o in offsets], dim=dim + 1)


@ATTENTION.register("sparse")
class SparseAttention(Core):
    """Strided, fixed or local block patterns, cost n·√n (Child et al. 2019)."""

    provides = frozenset({"causal", "cache", "qk"})

    @dataclass
    class Options:
        pattern: str = option("strided", "sparse pattern", choices=("strided", "fixed", "local"))
        block: int = option(
            64,
            "block length l: stride of 'strided', block of 'fixed', window of 'local'",
            at_least=1,
        )
        summary: int = option(
            8, "'fixed' pattern: summary positions c at each block's end", at_least=0
        )

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        options = cfg.options_for(self)
        self.pattern, self.block = options.pattern, options.block
        # Summaries are the last c positions of a block, so a block holds at most l of them.
        self.summary = min(options.summary, options.block)
        self.dropout = cfg.dropout

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
        t, s = q.shape[2], k.shape[2]
        p = self.dropout if self.training else 0.0
        if t < s:
            # Few queries after s cached keys: dense attention under the pattern's mask rows.
            mask = self.allowed(key_mask, causal, t, s, q.device)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.blockwise(q, k, v, key_mask, causal, p)

    def allowed(
        self, key_mask: Tensor | None, causal: bool, t: int, s: int, device: torch.device
    ) -> Tensor:
        """(b or 1, 1, t, s) bool: the pattern's keys for queries at the last t of s positions,
        cut by causality and padding (the pattern always holds i itself, as `allowed_mask`)."""
        cols = torch.arange(s, device=device)
        pattern = pattern_allowed(self.pattern, cols[s - t :], cols, self.block, self.summary)
        base = allowed_mask(key_mask, causal, t, s, device)
        return pattern if base is None else base & pattern

    def weights(self, q, k, *, key_mask=None, causal=False, bias=None) -> Tensor:
        t, s = q.shape[2], k.shape[2]
        scores = (q @ k.transpose(-2, -1)) * softmax_scale(q.shape[-1])
        allowed = self.allowed(key_mask, causal, t, s, q.device)
        return scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)

    @classmethod
    def bench_kinds(cls, n: int) -> dict[str, dict[str, Any]]:
        """Block lengths for n tokens: for `strided` the largest power of two not above √n
        (Child et al. 2019 take l ≈ √n); for `fixed` the power of two nearest √(c·n), which
        minimises the keys per query, l + c·n/l; for `local` a fixed window."""
        return {
            "sparse-strided": {"pattern": "strided", "block": 2 ** (int(math.log2(n)) // 2)},
            "sparse-fixed": {
                "pattern": "fixed",
                "block": 2 ** round(math.log2(BENCH_SUMMARIES * n) / 2),
                "summary": BENCH_SUMMARIES,
            },
            "sparse-local": {"pattern": "local", "block": BENCH_WINDOW},
        }

    @classmethod
    def keys_per_query(cls, options: Any, n: int) -> int:
        l, blocks = options.block, -(-n // options.block)
        if options.pattern == "fixed":
            return l + blocks * min(options.summary, l)
        window = 3 * l
        return window + blocks if options.pattern == "strided" else window

    def blockwise(
        self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, causal: bool, p: float
    ) -> Tensor:
        b, h, n, d = q.shape
        l, c = self.block, self.summary
        nb = -(-n // l)  # blocks, the last one padded
        pad = nb * l - n
        real = torch.ones(b, n, dtype=torch.bool, device=q.device)
        if key_mask is not None:
            real = key_mask.bool().expand(b, n)
        real = F.pad(real, (0, pad), value=False).view(b, nb, l)  # padding is never a key
        q, k, v = (F.pad(x, (0, 0, 0, pad)).unflatten(2, (nb, l)) for x in (q, k, v))
        q = q * softmax_scale(d)  # (b, h, nb, l, d)
        blocks = torch.arange(nb, device=q.device)

        # Each part: masked scores (b, h, nb, l, K) and the einsum subscripts of its keys and
        # values; query (B, r) is position B·l + r.
        parts: list[tuple[Tensor, Tensor, str]] = []

        def add(keys: Tensor, values: Tensor, subscripts: str, allowed: Tensor) -> None:
            scores = torch.einsum(f"bhBrd,{subscripts}->bhBrk", q, keys)
            parts.append((scores.masked_fill(~allowed, float("-inf")), values, subscripts))

        if self.pattern == "fixed":
            window: tuple[int, ...] = (0,)  # own block: A¹
        else:
            window = (-1, 0) if causal else (-1, 0, 1)  # every j with |i − j| ≤ l
        k_near, v_near = (neighbour_blocks(x, window, dim=2) for x in (k, v))  # (b, h, nb, K, d)
        offsets = torch.cat([torch.arange(l, device=q.device) + o * l for o in window])
        q_pos = (blocks[:, None] * l + torch.arange(l, device=q.device))[:, :, None]
        k_pos = (blocks[:, None] * l + offsets)[:, None, :]  # (nb, 1, K)
        gap = q_pos - k_pos  # (nb, l, K): i − j
        near = gap >= 0 if causal else torch.ones_like(gap, dtype=torch.bool)
        if self.pattern != "fixed":
            near = near & (gap.abs() <= l)
        real_near = neighbour_blocks(real, window, dim=1)  # (b, nb, K)
        # A query always sees itself, so no softmax row is empty (as in `allowed_mask`).
        add(k_near, v_near, "bhBkd", near & real_near[:, None, :, None, :] | (gap == 0))

        apart = blocks[:, None] - blocks[None, :]  # (nb, nb): B − C, query block minus key block
        if self.pattern == "strided":
            # A² minus the window: same offset r in blocks C with |B − C| ≥ 2 (C < B if causal).
            apart = apart >= 2 if causal else apart.abs() >= 2
            columns = real.transpose(1, 2)[:, None, None]  # (b, 1, 1, l, nb): key (C, r) real
            add(k, v, "bhkrd", apart[:, None, :] & columns)
        elif self.pattern == "fixed" and c > 0:
            # A² minus the own block: the last c positions of every other block.
            k_sum, v_sum = (x[:, :, :, l - c :].flatten(2, 3) for x in (k, v))  # (b, h, nb·c, d)
            other = apart >= 1 if causal else apart != 0
            other = other.repeat_interleave(c, dim=1)  # (nb, nb·c)
            real_sum = real[:, :, l - c :].flatten(1, 2)[:, None, None, None]  # (b,1,1,1,nb·c)
            add(k_sum, v_sum, "bhkd", other[:, None, :] & real_sum)

        scores, values, subscripts = zip(*parts, strict=True)
        weights = F.dropout(torch.cat(scores, dim=-1).softmax(dim=-1), p)  # one softmax over S_i
        weights = weights.split([part.shape[-1] for part in scores], dim=-1)
        out = sum(
            torch.einsum(f"bhBrk,{keys}->bhBrd", w, x)
            for w, x, keys in zip(weights, values, subscripts, strict=True)
        )
        return out.flatten(2, 3)[:, :, :n]  # (b, h, n, d)
