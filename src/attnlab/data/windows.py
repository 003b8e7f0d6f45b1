"""Language-model training batches from one long array of token ids.

`RandomWindows` draws windows of context+1 tokens at random positions, the sampling of
"Transformers from scratch". `Streams` reads the text in order as parallel streams, segment
after segment, so a recurrent model (Transformer-XL) carries real preceding text in its memory.

Both are reproducible and resumable: their whole state is a small tensor. Under data
parallelism every process draws the *global* batch and keeps its own slice, so N processes
with batch B see exactly the windows of one process with batch N·B.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def gather_windows(tokens: np.ndarray, starts: Tensor, length: int) -> Tensor:
    """(len(starts), length) LongTensor of the token runs beginning at `starts`."""
    index = starts.numpy()[:, None] + np.arange(length)
    return torch.from_numpy(np.asarray(tokens[index], dtype=np.int64))


def warmed_up(full: int, progress: float, share: float, multiple: int = 1) -> int:
    """A size growing in a straight line from full/8 to `full` over the first `share` of the
    training budget (`progress`: the share spent), rounded down to a multiple of `multiple`;
    `full` throughout when `share` is 0. Sequence-length warm-up (Li et al. 2022, "The
    Stability-Efficiency Dilemma") and the batch-size ramp (GPT-3, Brown et al. 2020, §2.3)."""
    if share <= 0 or progress >= share:
        return full
    start = min(full, max(multiple, full // 8))
    size = int(start + (full - start) * progress / share) // multiple * multiple
    return min(full, max(start, size))


class RandomWindows:
    """Batches (x, y) of shape (batch_size, context): y is x shifted by one token."""

    def __init__(
        self,
        tokens: np.ndarray,
        context: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ):
        if len(tokens) < context + 1:
            raise ValueError(f"{len(tokens)} tokens are fewer than one window of {context + 1}")
        self.tokens, self.context, self.batch_size = tokens, context, batch_size
        self.rank, self.world = rank, world
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[Tensor, Tensor]:
        return self.take(self.context, self.batch_size)

    def take(self, length: int, rows: int) -> tuple[Tensor, Tensor]:
        """The next batch cut to its first `rows` windows of `length` tokens (a warm-up's
        shorter or fewer windows). The starts drawn do not depend on either, so a run's
        windows are the same with and without a warm-up, and resume the same."""
        high = len(self.tokens) - self.context  # last start that still has a target
        starts = torch.randint(0, high, (self.batch_size * self.world,), generator=self.generator)
        first = self.rank * self.batch_size
        window = gather_windows(self.tokens, starts[first : first + rows], length + 1)
        return window[:, :-1], window[:, 1:]

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])


class Streams:
    """The text cut into batch_size·world contiguous streams, read `segment` tokens at a time.

    Each batch is (x, y, restart): `restart` is True when the streams begin again from their
    start, so a model's memory of the previous segment must be cleared.
    """

    def __init__(
        self, tokens: np.ndarray, segment: int, batch_size: int, rank: int = 0, world: int = 1
    ):
        streams = batch_size * world
        self.stream_length = (len(tokens) - 1) // streams
        if self.stream_length < segment:
            raise ValueError(
                f"{len(tokens)} tokens are too few for {streams} streams of one {segment}-token "
                "segment each"
            )
        self.tokens, self.segment = tokens, segment
        mine = torch.arange(rank * batch_size, (rank + 1) * batch_size)
        self.starts = mine * self.stream_length
        self.position = 0  # segments read since the last restart

    def __iter__(self):
        return self

    def __next__(self) -> tuple[Tensor, Tensor, bool]:
        offset = self.position * self.segment
        restart = offset + self.segment > self.stream_length
        if restart:
            self.position, offset = 0, 0
        window = gather_windows(self.tokens, self.starts + offset, self.segment + 1)
        self.position += 1
        return window[:, :-1], window[:, 1:], restart or offset == 0

    def state_dict(self) -> dict[str, Tensor]:
        return {"position": torch.tensor(self.position)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.position = int(state["position"])
