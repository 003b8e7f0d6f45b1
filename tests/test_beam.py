"""Beam search on hand-built models: tables of next-token probabilities by prefix."""

import itertools
import math

import pytest
import torch

from attnlab.models.beam import beam_search, length_penalty

A, B, EOS, BOS = 0, 1, 2, 3  # BOS is never a next token: probability 0 everywhere


class TableModel:
    """P(next | prefix) from a table {prefix: [p_A, p_B, p_EOS]}, one table per sentence; a
    prefix not in the table gets `rest`. Keeps each row's prefix as its own state, which
    `reorder` must keep in step with the search."""

    def __init__(self, tables, rest=(0.25, 0.25, 0.5), beam=1):
        self.tables, self.rest, self.beam = tables, rest, beam
        self.seen = None

    def probabilities(self, sentence, prefix):
        return self.tables[sentence].get(tuple(prefix), self.rest)

    def step(self, prefixes):
        rows = prefixes[:, 1:].tolist()
        if self.seen is not None:
            assert self.seen == [row[:-1] for row in rows]
        self.seen = rows
        out = torch.full((len(rows), 4), float("-inf"), dtype=torch.float64)
        for r, prefix in enumerate(rows):
            out[r, :3] = torch.tensor(self.probabilities(r // self.beam, prefix)).log()
        return out

    def reorder(self, rows):
        self.seen = [self.seen[r] for r in rows.tolist()]


def search(model, batch, beam, max_length, alpha=0.0, **options):
    model.beam = beam
    return beam_search(model.step, batch, beam=beam, bos_id=BOS, eos_id=EOS,
                       max_length=max_length, alpha=alpha, reorder=model.reorder,
                       **options)  # fmt: skip


# Greedy takes A (0.6), after which nothing is likely; B then EOS has 0.4 · 0.9 = 0.36.
TRAP = {(): (0.6, 0.4, 0.0), (A,): (0.34, 0.33, 0.33), (B,): (0.05, 0.05, 0.9)}


def test_beam_search_finds_the_better_sequence_greedy_misses():
    greedy = search(TableModel([TRAP]), 1, beam=1, max_length=3)
    assert greedy.tokens[0][:2] == [A, A]
    wide = search(TableModel([TRAP]), 1, beam=2, max_length=3)
    assert wide.tokens == [[B]]
    assert wide.scores[0] == pytest.approx(math.log(0.4 * 0.9))
    assert wide.scores[0] > greedy.scores[0]


def exhaustive_best(model, sentence, max_length, alpha):
    """The best score over every possible output, by enumeration."""
    best = -math.inf
    for length in range(1, max_length + 1):
        for body in itertools.product((A, B), repeat=length - 1):
            for last in (A, B, EOS) if length == max_length else (EOS,):
                sequence = [*body, last]
                logp = sum(math.log(model.probabilities(sentence, sequence[:i])[y])
                           for i, y in enumerate(sequence))  # fmt: skip
                best = max(best, logp / float(length_penalty(torch.tensor(length), alpha)))
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_a_beam_as_wide_as_every_candidate_finds_the_exact_best(alpha):
    generator = torch.Generator().manual_seed(1)
    tables = []
    for _ in range(3):
        prefixes = [p for n in range(4) for p in itertools.product((A, B), repeat=n)]
        draws = torch.rand(len(prefixes), 3, generator=generator, dtype=torch.float64)
        tables.append(
            {p: tuple((d / d.sum()).tolist()) for p, d in zip(prefixes, draws, strict=True)}
        )
    model = TableModel(tables)
    found = search(model, 3, beam=27, max_length=4, alpha=alpha)
    for i in range(3):
        assert found.scores[i] == pytest.approx(exhaustive_best(model, i, 4, alpha))


def test_sentences_of_a_batch_are_searched_independently():
    other = {(): (0.1, 0.2, 0.7)}
    together = search(TableModel([TRAP, other]), 2, beam=2, max_length=3)
    assert together.tokens[0] == search(TableModel([TRAP]), 1, beam=2, max_length=3).tokens[0]
    assert together.tokens[1] == search(TableModel([other]), 1, beam=2, max_length=3).tokens[0]


def test_the_search_stops_when_every_hypothesis_has_ended():
    model = TableModel([{(): (0.0, 0.0, 1.0)}])
    calls = []
    step = model.step
    model.step = lambda prefixes: calls.append(prefixes.shape[1]) or step(prefixes)
    found = search(model, 1, beam=2, max_length=10)
    assert found.tokens == [[]] and calls == [1]


def test_no_end_before_the_minimum_length_and_none_past_the_maximum():
    ends_at_once = TableModel([{}], rest=(0.1, 0.1, 0.8))
    found = search(ends_at_once, 1, beam=2, max_length=5, min_length=3)
    assert len(found.tokens[0]) == 3
    never_ends = TableModel([{}], rest=(0.6, 0.4, 0.0))
    assert search(never_ends, 1, beam=3, max_length=4).tokens == [[A, A, A, A]]
