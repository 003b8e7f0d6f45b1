"""The algorithmic tasks of the Neural Turing Machine paper (Graves et al. 2014, §4), generated
on the fly from a seeded random generator.

Every input vector holds `bits` random bits and two control channels; all sequences of a batch
have the same length, so no padding is needed. Targets are scored only at the answer
positions (`scored`), where the model reads nothing but zeros:

    copy                L vectors, a delimiter (channel bits);          answer: the L vectors
    repeat-copy         L vectors, a delimiter carrying R/10 in channel bits+1;
                        answer: the L vectors R times, then an end marker (output channel bits)
    associative-recall  n items of 3 vectors, each after a delimiter (channel bits); a query
                        item between two query delimiters (channel bits+1);
                        answer: the item that followed the query item
    priority-sort       L vectors with a priority in [−1, 1] (channel bits+1), a delimiter;
                        answer: the ⌈0.8 L⌉ vectors of highest priority, highest first
                        (the paper: 16 of 20)

"Length" is L for copy, repeat copy and priority sort, and the number of items n for
associative recall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

TASK_NAMES = ("copy", "repeat-copy", "associative-recall", "priority-sort")
ITEM_VECTORS = 3  # vectors per associative-recall item (the paper's choice)
REPEAT_SCALE = 10.0  # repeat-copy gives R / 10 on its control channel
SORTED_SHARE = 0.8  # priority sort answers with the top 16 of 20


@dataclass(frozen=True)
class Layout:
    """One task at fixed sizes: what a model reads and writes, and how much it must store."""

    task: str
    bits: int

    @property
    def inputs(self) -> int:
        return self.bits + 2

    @property
    def outputs(self) -> int:
        return self.bits + (self.task == "repeat-copy")  # plus the end marker

    @property
    def least_length(self) -> int:
        """The shortest meaningful length: associative recall needs an item after the query."""
        return 2 if self.task == "associative-recall" else 1

    def steps(self, length: int, repeats: int = 1) -> int:
        """Positions in one sequence: input, delimiters and answer."""
        if self.task == "copy":
            return 2 * length + 1
        if self.task == "repeat-copy":
            return length + 1 + length * repeats + 1
        if self.task == "associative-recall":
            return (ITEM_VECTORS + 1) * length + 2 * ITEM_VECTORS + 2
        return length + 1 + sorted_count(length)

    def stored(self, length: int) -> int:
        """Vectors the model must hold at once to answer: the whole input."""
        return ITEM_VECTORS * length if self.task == "associative-recall" else length


def sorted_count(length: int) -> int:
    return max(1, math.ceil(SORTED_SHARE * length))


@dataclass
class Batch:
    """inputs (b, t, bits + 2), targets (b, t, outputs), scored (t,) bool."""

    inputs: Tensor
    targets: Tensor
    scored: Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(self.inputs.to(device), self.targets.to(device), self.scored.to(device))


def random_bits(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return torch.randint(0, 2, shape, generator=generator).float()


def generate(
    layout: Layout, batch: int, length: int, generator: torch.Generator, repeats: int = 1
) -> Batch:
    """`batch` sequences of one task at one length (and, for repeat copy, repeat count)."""
    bits, t = layout.bits, layout.steps(length, repeats)
    x = torch.zeros(batch, t, layout.inputs)
    y = torch.zeros(batch, t, layout.outputs)
    scored = torch.zeros(t, dtype=torch.bool)
    delimiter, control = bits, bits + 1  # the two control channels
    if layout.task == "associative-recall":
        items = random_bits((batch, length, ITEM_VECTORS, bits), generator)
        x[:, : 4 * length].view(batch, length, 4, -1)[:, :, 0, delimiter] = 1
        x[:, : 4 * length].view(batch, length, 4, -1)[:, :, 1:, :bits] = items
        query = torch.randint(0, length - 1, (batch,), generator=generator)
        rows = torch.arange(batch)
        q = 4 * length  # the query: delimiter, its 3 vectors, delimiter
        x[:, q, control] = x[:, q + 4, control] = 1
        x[:, q + 1 : q + 4, :bits] = items[rows, query]
        y[:, q + 5 :, :bits] = items[rows, query + 1]
        scored[q + 5 :] = True
        return Batch(x, y, scored)
    data = random_bits((batch, length, bits), generator)
    x[:, :length, :bits] = data
    x[:, length, delimiter] = 1
    answer = slice(length + 1, t)
    scored[answer] = True
    if layout.task == "copy":
        y[:, answer, :bits] = data
    elif layout.task == "repeat-copy":
        x[:, length, control] = repeats / REPEAT_SCALE
        y[:, length + 1 : t - 1, :bits] = data.repeat(1, repeats, 1)
        y[:, t - 1, bits] = 1  # the end marker
    else:  # priority sort
        priority = torch.rand(batch, length, generator=generator) * 2 - 1
        x[:, :length, control] = priority
        top = priority.argsort(dim=1, descending=True, stable=True)[:, : sorted_count(length)]
        y[:, answer, :bits] = data[torch.arange(batch)[:, None], top]
    return Batch(x, y, scored)
