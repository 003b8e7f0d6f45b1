"""Linear attention: Katharopoulos et al. 2020, "Transformers are RNNs: Fast Autoregressive
Transformers with Linear Attention".

Softmax attention's similarity exp(q·k/√d) is replaced by a kernel φ(q)·φ(k) with the feature
map φ(x) = elu(x) + 1 (§3.2.1, positive everywhere), so the sums over keys can be taken once
and shared by every query (eq. 5-6):

    V'_i = φ(Q_i)ᵀ Σ_j φ(K_j) V_jᵀ  /  φ(Q_i)ᵀ Σ_j φ(K_j)

Causal (eq. 8-10), the sums run over j ≤ i and become a recurrence, the "RNN" of the title:

    S_i = S_{i-1} + φ(K_i) V_iᵀ,   z_i = z_{i-1} + φ(K_i),   V'_i = φ(Q_i)ᵀ S_i / φ(Q_i)ᵀ z_i

S (d × d) and z (d) are the core's whole incremental state: generation costs the same per token
however long the text, where a key/value cache grows.

Training computes the causal form chunk by chunk (the chunked form later papers use): within a
chunk of `chunk` positions the masked products φ(Q)φ(K)ᵀ are formed directly; across chunks
the prefix sums S and z carry the rest. Cost O(n·chunk·d + n·d²), no loop over tokens.
Padded keys get φ(K) = 0, so they add nothing to S or z.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ..config import ModelConfig, option
from ..registry import ATTENTION
from .base import Core, allowed_mask

EPS = 1e-6  # keeps a query that sees no key (only padding) at zero instead of 0/0


def feature_map(x: Tensor) -> Tensor:
    """φ(x) = elu(x) + 1 (Katharopoulos et al. 2020, eq. 7)."""
    return F.elu(x) + 1


class LinearState:
    """The running sums S = Σ φ(K_j) V_jᵀ (b, h, d, d) and z = Σ φ(K_j) (b, h, d)."""

    bounded = True  # constant size; generation still moves its window for the positions

    def __init__(self) -> None:
        self.sums: Tensor | None = None
        self.normaliser: Tensor | None = None
        self.length = 0

    def reset(self) -> None:
        self.sums, self.normaliser, self.length = None, None, 0


@ATTENTION.register("linear")
class LinearAttention(Core):
    """Kernel φ(q)·φ(k) in place of softmax; causal as an RNN (Katharopoulos et al. 2020)."""

    provides = frozenset({"causal", "cache", "qk", "cross"})

    @dataclass
    class Options:
        chunk: int = option(64, "positions per chunk of the causal computation", at_least=1)

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.chunk = cfg.options_for(self).chunk

    def new_state(self, capacity: int) -> LinearState:
        return LinearState()

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
        b, h, t, d = q.shape
        q, k = feature_map(q), feature_map(k)
        if key_mask is not None:
            k = k * key_mask[:, None, -k.shape[2] :, None].to(k.dtype)  # padding adds nothing
        sums = k.new_zeros(b, h, d, v.shape[-1])
        normaliser = k.new_zeros(b, h, d)
        if state is not None and state.length:
            sums, normaliser = state.sums, state.normaliser
        if causal:
            out, sums, normaliser = self.causal(q, k, v, sums, normaliser)
        else:
            sums = sums + k.transpose(-2, -1) @ v
            normaliser = normaliser + k.sum(dim=2)
            numerator = q @ sums  # (b, h, t, d)
            out = numerator / ((q * normaliser[:, :, None]).sum(-1, keepdim=True) + EPS)
        if state is not None:
            state.sums, state.normaliser = sums, normaliser
            state.length += k.shape[2]
        return out

    def causal(
        self, q: Tensor, k: Tensor, v: Tensor, sums: Tensor, normaliser: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 8-10 chunk by chunk from the sums before these positions; returns the outputs
        and the sums after them."""
        b, h, t, d = q.shape
        c = min(self.chunk, t)
        n = -(-t // c)  # chunks, the last one padded with zeros (which add nothing)
        pad = n * c - t
        qc, kc, vc = (F.pad(x, (0, 0, 0, pad)).unflatten(2, (n, c)) for x in (q, k, v))
        chunk_sums = kc.transpose(-2, -1) @ vc  # (b, h, n, d, d_v): Σ φ(K_j) V_jᵀ per chunk
        chunk_keys = kc.sum(dim=3)  # (b, h, n, d)
        # S and z before each chunk: what came before, plus every earlier chunk.
        sums_before = sums[:, :, None] + chunk_sums.cumsum(dim=2) - chunk_sums
        keys_before = normaliser[:, :, None] + chunk_keys.cumsum(dim=2) - chunk_keys
        within = (qc @ kc.transpose(-2, -1)).tril()  # (b, h, n, c, c): φ(Q_i)·φ(K_j), j ≤ i
        numerator = qc @ sums_before + within @ vc  # (b, h, n, c, d_v)
        denominator = (qc * keys_before[:, :, :, None]).sum(-1) + within.sum(-1)
        out = numerator / (denominator[..., None] + EPS)
        out = out.flatten(2, 3)[:, :, :t]
        return out, sums + chunk_sums.sum(dim=2), normaliser + chunk_keys.sum(dim=2)

    def weights(self, q, k, *, key_mask=None, causal=False, bias=None) -> Tensor:
        """φ(Q_i)·φ(K_j) over the keys i may see, each row divided by its sum."""
        similarity = feature_map(q) @ feature_map(k).transpose(-2, -1)  # (b, h, t, s)
        allowed = allowed_mask(key_mask, causal, q.shape[2], k.shape[2], q.device)
        if allowed is not None:
            similarity = similarity * allowed
        return similarity / (similarity.sum(-1, keepdim=True) + EPS)

    @classmethod
    def keys_per_query(cls, options: Any, n: int) -> int:
        return min(options.chunk, n)
