"""Beam search with the GNMT length penalty (Wu et al. 2016, §7), batched over sentences and
beams; a beam of one is greedy decoding.

The search keeps `beam` hypotheses per sentence as rows of one batch of sentences·beams. Each
step scores every continuation of every hypothesis and keeps, per sentence, the `beam` best of
them by their length-normalised log-probability

    s(Y) = log P(Y | X) / lp(Y),   lp(Y) = ((5 + |Y|) / 6)^α

(α = 0: the plain log-probability). A hypothesis that has ended with EOS stays in the beam
with its score and length fixed, competing with the live ones; the search stops when every
hypothesis of every sentence has ended, or at `max_length` tokens.

The model is seen through two functions: `step(prefixes)` gives the log-probabilities of the
next token after each row's prefix, and `reorder(rows)` tells it which row each new row
continues, so a key/value cache can follow its hypotheses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass
class Hypotheses:
    """The best hypothesis of each sentence: its tokens (without BOS and EOS) and its score,
    the length-normalised log-probability."""

    tokens: list[list[int]]
    scores: list[float]


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    """lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, eq. 14)."""
    return ((5.0 + length.double()) / 6.0) ** alpha


def beam_search(
    step: Callable[[Tensor], Tensor],
    batch: int,
    *,
    beam: int,
    bos_id: int,
    eos_id: int,
    max_length: int,
    alpha: float = 0.0,
    min_length: int = 0,
    reorder: Callable[[Tensor], None] | None = None,
    device: torch.device | str = "cpu",
) -> Hypotheses:
    """Search for each of `batch` sentences. `step(prefixes)`: prefixes (batch·beam, t) int64,
    starting with BOS, sentence i's hypotheses in rows i·beam … i·beam + beam - 1 -> (batch·beam,
    vocab) log-probabilities of the next token. `reorder(rows)`: row r continues old row
    rows[r]. EOS is refused before `min_length` tokens."""
    if beam < 1 or max_length < 1:
        raise ValueError(f"beam and max_length must be at least 1, got {beam}, {max_length}")
    n = batch * beam
    tokens = torch.full((n, max_length + 1), eos_id, dtype=torch.long, device=device)
    tokens[:, 0] = bos_id
    scores = torch.full((batch, beam), float("-inf"), dtype=torch.float64, device=device)
    scores[:, 0] = 0.0  # all rows start alike: expand one per sentence, or beams repeat
    lengths = torch.zeros(n, dtype=torch.long, device=device)  # tokens so far, EOS included
    ended = torch.zeros(n, dtype=torch.bool, device=device)
    first_row = torch.arange(batch, device=device)[:, None] * beam  # (batch, 1)
    for t in range(1, max_length + 1):
        logp = step(tokens[:, :t]).double()  # (n, vocab)
        vocab = logp.shape[-1]
        if t <= min_length:
            logp[:, eos_id] = float("-inf")
        # An ended hypothesis continues only with EOS, at no cost: its score stays the same.
        logp = torch.where(ended[:, None], ended_row(vocab, eos_id, logp), logp)
        total = scores.view(n, 1) + logp  # (n, vocab) log P of each continuation
        new_lengths = lengths + (~ended).long()
        ranked = total / length_penalty(new_lengths, alpha)[:, None]
        best, index = ranked.view(batch, beam * vocab).topk(beam, dim=1)  # (batch, beam)
        rows = (first_row + index // vocab).view(-1)  # which old row each new row continues
        token = (index % vocab).view(-1)
        scores = total.view(batch, beam * vocab).gather(1, index)
        tokens = tokens[rows]
        tokens[:, t] = token
        lengths = new_lengths[rows]
        # An impossible hypothesis (probability 0: fewer candidates than beams) is over too.
        ended = ended[rows] | (token == eos_id) | scores.view(-1).isneginf()
        if reorder is not None:
            reorder(rows)
        if bool(ended.all()):
            break
    return best_hypotheses(tokens, scores.view(-1), lengths, ended, batch, beam, alpha)


def ended_row(vocab: int, eos_id: int, like: Tensor) -> Tensor:
    """(vocab,) log-probabilities of a hypothesis that has ended: EOS certain."""
    row = torch.full((vocab,), float("-inf"), dtype=like.dtype, device=like.device)
    row[eos_id] = 0.0
    return row


def best_hypotheses(
    tokens: Tensor, scores: Tensor, lengths: Tensor, ended: Tensor, batch: int, beam: int,
    alpha: float,
) -> Hypotheses:  # fmt: skip
    normalised = (scores / length_penalty(lengths, alpha)).view(batch, beam)
    best = normalised.argmax(dim=1)
    out, values = [], []
    for i, j in enumerate(best.tolist()):
        row = i * beam + j
        length = int(lengths[row]) - int(ended[row])  # without the EOS
        out.append(tokens[row, 1 : 1 + length].tolist())
        values.append(float(normalised[i, j]))
    return Hypotheses(out, values)


def reorder_states(states: Any, rows: Tensor) -> None:
    """Make each layer's incremental state follow its hypotheses: every tensor a state holds
    per row (a key/value cache, running sums) is gathered by `rows`."""
    for state in states or ():
        for name, value in vars(state).items():
            if isinstance(value, Tensor) and value.dim() and value.shape[0] == len(rows):
                setattr(state, name, value.index_select(0, rows))
