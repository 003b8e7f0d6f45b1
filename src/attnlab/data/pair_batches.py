"""Batches of sentence pairs, by length, so padding is small (Vaswani et al. 2017, §5.1:
"sentence pairs were batched together by approximate sequence length", about 25,000 source
and 25,000 target tokens a batch).

A source is its tokens followed by EOS; the decoder reads BOS and the target and is trained to
predict the target and EOS. Batches hold either `batch_size` pairs or, with a token budget,
as many pairs as fit in `batch_tokens` tokens on each side, padding included. Training draws
batches forever: each pass shuffles the pairs, sorts them by length (ties in random order),
cuts the batches and shuffles their order. The same seed gives the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError

IGNORE = -100  # the target id of padding, which the loss skips (`models.seq2seq.IGNORE`)


class PairBatch(NamedTuple):
    src: Tensor  # (b, s) int64 source tokens and EOS, padded
    src_mask: Tensor  # (b, s) bool, True for real source tokens
    tgt_in: Tensor  # (b, t) BOS and the target, padded
    tgt_out: Tensor  # (b, t) the target and EOS, IGNORE at padding
    index: Tensor  # (b,) which example each pair belongs to

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(*(t.to(device, non_blocking=True) for t in self))


class PairBatches:
    """Encoded pairs (`sources[example[i]]`, `targets[i]`) served as `PairBatch`es."""

    def __init__(
        self,
        sources: list[np.ndarray],
        targets: list[np.ndarray],
        example: list[int],
        bos_id: int,
        eos_id: int,
        batch_size: int,
        batch_tokens: int = 0,
        seed: int = 0,
    ):
        if not targets:
            raise UserError("no sentence pairs to make batches of")
        self.sources = [np.append(s, eos_id).astype(np.int64) for s in sources]
        self.targets = [np.asarray(t, dtype=np.int64) for t in targets]
        self.example = np.asarray(example, dtype=np.int64)
        self.bos_id, self.eos_id = bos_id, eos_id
        self.batch_size, self.batch_tokens, self.seed = batch_size, batch_tokens, seed
        self.src_lengths = np.array([len(self.sources[i]) for i in example], dtype=np.int64)
        self.tgt_lengths = np.array([len(t) + 1 for t in self.targets], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.targets)

    def collate(self, pairs: np.ndarray) -> PairBatch:
        b, s, t = len(pairs), int(self.src_lengths[pairs].max()), int(self.tgt_lengths[pairs].max())
        src = np.full((b, s), self.eos_id, dtype=np.int64)
        tgt_in = np.full((b, t), self.eos_id, dtype=np.int64)
        tgt_out = np.full((b, t), IGNORE, dtype=np.int64)
        for row, i in enumerate(pairs.tolist()):
            source, target = self.sources[self.example[i]], self.targets[i]
            src[row, : len(source)] = source
            tgt_in[row, 0] = self.bos_id
            tgt_in[row, 1 : len(target) + 1] = target
            tgt_out[row, : len(target)] = target
            tgt_out[row, len(target)] = self.eos_id
        mask = np.arange(s)[None, :] < self.src_lengths[pairs][:, None]
        return PairBatch(*(torch.from_numpy(a) for a in (src, mask, tgt_in, tgt_out)),
                         torch.from_numpy(self.example[pairs]))  # fmt: skip

    def cut(self, ordered: np.ndarray) -> list[np.ndarray]:
        """Pairs in this order cut into consecutive batches: `batch_size` pairs, or as many as
        keep each side's padded size (pairs × longest) within `batch_tokens`."""
        if not self.batch_tokens:
            size = self.batch_size
            return [ordered[i : i + size] for i in range(0, len(ordered), size)]
        longest = np.maximum(self.src_lengths[ordered], self.tgt_lengths[ordered])
        batches, start, widest = [], 0, 0
        for i, length in enumerate(longest.tolist()):
            widest = max(widest, length)
            if (i + 1 - start) * widest > self.batch_tokens and i > start:
                batches.append(ordered[start:i])
                start, widest = i, length
        batches.append(ordered[start:])
        return batches

    def by_length(self, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        """Every pair once, sorted by length (ties shuffled by `rng`), cut into batches."""
        order = np.arange(len(self)) if rng is None else rng.permutation(len(self))
        keys = np.maximum(self.src_lengths, self.tgt_lengths)[order]
        return self.cut(order[np.argsort(keys, kind="stable")])

    def train_indices(self, rank: int = 0, world: int = 1) -> Iterator[np.ndarray]:
        """The pairs of each training batch, without end; process `rank` of `world` takes
        every world-th batch of the same sequence."""
        rng = np.random.default_rng(self.seed)
        step = 0
        while True:
            batches = self.by_length(rng)
            for k in rng.permutation(len(batches)).tolist():
                if step % world == rank:
                    yield batches[k]
                step += 1

    def eval_batches(self) -> Iterator[PairBatch]:
        """Every pair once, shortest first."""
        for batch in self.by_length():
            yield self.collate(batch)
