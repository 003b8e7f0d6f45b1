"""The one interface every attention mechanism shares: the *core*.

`MultiHeadAttention` (`layer.py`) does what all mechanisms have in common: project the input
to queries, keys and values, split them into heads, apply positions, and unify the heads again
with a linear map (Vaswani et al. 2017, eq. 5). A core does the one thing they differ in: turn
per-head queries, keys and values into per-head outputs. Cores register themselves by name,
so a new mechanism is one new file and `--attention NAME` finds it.

Core call signature (all shapes per head, queries aligned with the *last* t keys):

    core(q, k, v, *, key_mask, causal, bias, state) -> out
      q: (b, h, t, d)   k, v: (b, h, t', d), the keys and values of the new positions
      state: what the core kept of earlier calls (`new_state`), or None; with a state the
             core sees s = state.length + t' keys in all
      key_mask: (b, s) bool, True for real tokens, or None
      causal: query i (absolute position s - t + i) sees keys j <= s - t + i only
      bias: broadcastable to (b, h, t, s), added to the scores (ALiBi, relative positions)
      out: (b, h, t, d)

Most cores attend over every key they have seen: their state is a key/value cache, and they
implement `attend(q, k, v, ...)` over all keys, which `forward` calls once the cache holds the
new ones. A core whose state is something else (a recurrent core's running sums) overrides
`forward` and `new_state` instead.

A core declares what it `provides` (`config.FEATURES`: "causal", "cache", "bias", "qk",
"cross"), so a configuration that needs more is refused before anything is built.
`weights(q, k, ...)` returns the (b, h, t, s) matrix the core multiplies the values with,
written out in full: the attention a user can look at, and the reference the fast path is
tested against.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .cache import KVCache


def allowed_mask(
    key_mask: Tensor | None, causal: bool, t: int, s: int, device: torch.device
) -> Tensor | None:
    """Boolean (b or 1, 1, t, s) mask of the key positions each query may see, or None.

    A query that may see no key at all (a padded query under a causal mask) sees the key at
    its own position, so no softmax is over nothing (NaN). Only such rows get it: a real query
    of self-attention sees its own key anyway, and a query of cross-attention, whose keys
    belong to another sequence, must never see a padded one.
    """
    if key_mask is None and not causal:
        return None
    rows = torch.arange(s - t, s, device=device)[:, None]  # absolute query positions
    cols = torch.arange(s, device=device)[None, :]
    allowed = cols <= rows if causal else torch.ones(t, s, dtype=torch.bool, device=device)
    allowed = allowed[None, None]  # (1, 1, t, s)
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :].bool()
    return allowed | ((cols == rows) & ~allowed.any(dim=-1, keepdim=True))


def softmax_scale(d: int) -> float:
    return 1.0 / math.sqrt(d)


class Core(nn.Module):
    """Per-head queries, keys and values -> per-head outputs. Subclasses register with
    `@ATTENTION.register(name)` and may define an `Options` dataclass of their own settings."""

    provides: ClassVar[frozenset[str]] = frozenset()
    # True for a core that attends over the input itself: one head, no projections (basic).
    parameter_free: ClassVar[bool] = False
    # True for a core whose weights approximate softmax(QKᵀ/√d) (Nyström): a look at them
    # shows the exact softmax beside them.
    approximates_softmax: ClassVar[bool] = False
    name: ClassVar[str]

    def __init__(self, cfg: ModelConfig):
        super().__init__()

    def forward(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        key_mask: Tensor | None = None,
        causal: bool = False,
        bias: Tensor | None = None,
        state: Any = None,
    ) -> Tensor:
        if state is not None:
            k, v = state.append(k, v)  # every key so far: (b, h, s, d)
            if key_mask is not None and key_mask.shape[1] != k.shape[2]:
                raise ValueError("a padding mask with a cache must cover the cached keys too")
        return self.attend(q, k, v, key_mask=key_mask, causal=causal, bias=bias)

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
        """Attention of q over all keys k (b, h, s, d) and values v."""
        raise NotImplementedError

    def new_state(self, capacity: int) -> Any:
        """An empty incremental state for up to `capacity` positions (a key/value cache for a
        core that provides "cache"), or None: then generation recomputes every step."""
        return KVCache(capacity) if "cache" in self.provides else None

    def weights(
        self,
        q: Tensor,
        k: Tensor,
        *,
        key_mask: Tensor | None = None,
        causal: bool = False,
        bias: Tensor | None = None,
    ) -> Tensor:
        """The (b, h, t, s) attention weights, written out in full."""
        raise NotImplementedError

    def skip(self, v: Tensor, key_mask: Tensor | None = None) -> Tensor | None:
        """A term the core adds to weights @ v (Nyström's convolution), or None."""
        return None

    @classmethod
    def bench_kinds(cls, n: int) -> dict[str, dict[str, Any]]:
        """`bench attention` kinds for length n: label -> this core's options."""
        return {cls.name: {}}

    @classmethod
    def keys_per_query(cls, options: Any, n: int) -> int:
        """Scores each query holds in the core's largest intermediate (for memory estimates);
        0 for a core that holds none."""
        return 0


def remember(state: Any, k: Tensor, v: Tensor, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Keys and values of every position so far: the state's followed by the new ones."""
    if state is None:
        return k, v
    k, v = state.append(k, v)
    if key_mask is not None and key_mask.shape[1] != k.shape[2]:
        raise ValueError("a padding mask with a cache must cover the cached keys too")
    return k, v
