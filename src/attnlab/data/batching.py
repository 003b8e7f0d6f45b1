"""Batches for classification: texts of similar length together, padded to the longest in the
batch, with a mask marking the real tokens.

Training draws batches forever: each pass over the data shuffles the examples, sorts them by
length within pools of `POOL_BATCHES` batches (so a batch holds similar lengths and padding is
small, yet each batch is a random draw) and shuffles the order of the batches. Evaluation
passes over every example exactly once, sorted by length. The same seed gives the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from .tables import LabeledTexts, label_ids
from .tokenizers import Tokenizer

POOL_BATCHES = 50


class Batch(NamedTuple):
    tokens: Tensor  # (b, t) int64, padded with the tokenizer's pad id
    mask: Tensor  # (b, t) bool, True for real tokens
    labels: Tensor  # (b,) int64 class indices
    index: Tensor  # (b,) int64, each example's position in the data

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in self))


class ClassificationBatches:
    """Token sequences and labels, cut to `context` tokens, served as `Batch`es.

    `truncated` counts the sequences that were longer than `context` (their first `context`
    tokens are kept); `longest` is the longest length before cutting. A text that encodes to no
    tokens at all becomes one padding token marked real, so pooling always has something to see.
    """

    def __init__(
        self,
        sequences: list[np.ndarray],
        labels: np.ndarray,
        context: int,
        batch_size: int,
        pad_id: int | None = 0,
        seed: int = 0,
    ):
        if len(sequences) != len(labels):
            raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
        if not len(sequences):
            raise UserError("no examples to make batches of")
        if context < 1 or batch_size < 1:
            raise UserError(f"context and batch size must be positive, got {context}, {batch_size}")
        self.pad_id = 0 if pad_id is None else pad_id
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        self.truncated = int((lengths > context).sum())
        self.longest = int(lengths.max())
        self.sequences = [s[:context] if len(s) else np.array([self.pad_id]) for s in sequences]
        self.lengths = np.clip(lengths, 1, context)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.batch_size, self.seed = batch_size, seed

    @classmethod
    def from_texts(
        cls,
        tokenizer: Tokenizer,
        data: LabeledTexts,
        classes: list[str],
        context: int,
        batch_size: int,
        seed: int = 0,
    ) -> ClassificationBatches:
        """Encode `data` with `tokenizer`; labels become indices into `classes`."""
        ids = label_ids(data, classes)
        return cls(
            tokenizer.encode_batch(data.texts), ids, context, batch_size, tokenizer.pad_id, seed
        )

    def __len__(self) -> int:
        return len(self.sequences)

    def collate(self, indices: np.ndarray) -> Batch:
        width = int(self.lengths[indices].max())
        tokens = np.full((len(indices), width), self.pad_id, dtype=np.int64)
        for row, i in enumerate(indices.tolist()):
            tokens[row, : self.lengths[i]] = self.sequences[i]
        mask = np.arange(width)[None, :] < self.lengths[indices][:, None]  # (b, t)
        return Batch(
            torch.from_numpy(tokens),
            torch.from_numpy(mask),
            torch.from_numpy(self.labels[indices]),
            torch.from_numpy(indices.astype(np.int64)),
        )

    def by_length(self, indices: np.ndarray) -> list[np.ndarray]:
        """`indices` sorted by length (stable) and cut into batches."""
        ordered = indices[np.argsort(self.lengths[indices], kind="stable")]
        return [ordered[i : i + self.batch_size] for i in range(0, len(ordered), self.batch_size)]

    def train_batches(self, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Shuffled, length-bucketed batches without end. With `world` processes, process `rank`
        takes every world-th batch of the same sequence, so together they see each batch once."""
        rng = np.random.default_rng(self.seed)
        pool = self.batch_size * POOL_BATCHES
        step = 0
        while True:
            order = rng.permutation(len(self))
            batches = [
                b for i in range(0, len(order), pool) for b in self.by_length(order[i : i + pool])
            ]
            for k in rng.permutation(len(batches)).tolist():
                if step % world == rank:
                    yield self.collate(batches[k])
                step += 1

    def eval_batches(self, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Every example once (every world-th batch for process `rank`), shortest first."""
        for k, batch in enumerate(self.by_length(np.arange(len(self)))):
            if k % world == rank:
                yield self.collate(batch)
