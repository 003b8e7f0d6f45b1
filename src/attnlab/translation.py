"""Translating texts with a sequence-to-sequence model, and scoring translations: corpus BLEU
(Papineni et al. 2002) and chrF (Popović 2015) as sacrebleu computes them, with every
reference of a source, the share of exact matches, and the token-level loss and accuracy.

The special ids follow one convention, kept here: a tokenizer of V ids gives a model of V + 2,
whose last two are BOS and EOS; a source is its tokens followed by EOS.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sacrebleu
import torch
from torch import nn

from .data.pair_batches import PairBatches
from .data.tokenizers import Tokenizer
from .errors import UserError
from .models.seq2seq import smoothed_loss


def special_ids(tokenizer: Tokenizer) -> tuple[int, int]:
    """(BOS, EOS) of a model whose text ids come from `tokenizer`: the two ids after them."""
    return tokenizer.vocab_size, tokenizer.vocab_size + 1


def encode_checked(
    tokenizer: Tokenizer,
    texts: list[str],
    context: int,
    what: str = "source",
    where: list[str] | None = None,
) -> list[np.ndarray]:
    """Every text's ids; one that would not fit the model's context with its end mark (EOS,
    or BOS for a target) is a UserError naming it (`where[i]`: where text i comes from)."""
    ids = tokenizer.encode_batch(texts)
    for i, x in enumerate(ids):
        if len(x) + 1 > context:
            place = where[i] if where else repr(texts[i][:40])
            raise UserError(f"{place}: the {what} is {len(x)} tokens long; with its end mark "
                            f"that exceeds the model's context of {context} (train with a "
                            "larger --context, or shorten it)")  # fmt: skip
    return ids


def translate_ids(
    model: nn.Module,
    sources: list[np.ndarray],
    *,
    beam: int,
    length_penalty: float,
    batch_size: int,
    device: torch.device,
) -> tuple[list[list[int]], list[float]]:
    """The best target ids and score of each source (ids without EOS), in batches of
    similar length."""
    order = np.argsort([len(s) for s in sources], kind="stable")
    tokens: list[list[int]] = [[] for _ in sources]
    scores = [0.0] * len(sources)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size].tolist()
        width = max(len(sources[i]) for i in chosen) + 1
        src = torch.full((len(chosen), width), model.eos_id, dtype=torch.long)
        mask = torch.zeros(len(chosen), width, dtype=torch.bool)
        for row, i in enumerate(chosen):
            src[row, : len(sources[i])] = torch.as_tensor(sources[i], dtype=torch.long)
            mask[row, : len(sources[i]) + 1] = True
        found = model.search(src.to(device), mask.to(device), beam=beam,
                             length_penalty=length_penalty)  # fmt: skip
        for row, i in enumerate(chosen):
            tokens[i], scores[i] = found.tokens[row], found.scores[row]
    return tokens, scores


def corpus_scores(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu's defaults: 13a tokenisation, chrF with character
    6-grams and β = 2) against every reference, and the share of hypotheses that equal one of
    their references exactly."""
    most = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]
    bleu = sacrebleu.corpus_bleu(hypotheses, streams)
    chrf = sacrebleu.corpus_chrf(hypotheses, streams)
    exact = sum(h in refs for h, refs in zip(hypotheses, references, strict=True))
    return {"bleu": bleu.score, "chrf": chrf.score, "exact_match": exact / len(hypotheses)}


@torch.no_grad()
def token_scores(model: nn.Module, batches: PairBatches, device: torch.device) -> dict[str, Any]:
    """Teacher-forced cross-entropy (nats per target token, EOS included) and the share of
    target tokens predicted right, over every pair."""
    was_training = model.training
    model.eval()
    total_nll, total_right, count = 0.0, 0.0, 0
    for batch in batches.eval_batches():
        batch = batch.to(device)
        logits = model(batch.src, batch.tgt_in, batch.src_mask)
        _, nll, accuracy = smoothed_loss(logits, batch.tgt_out, 0.0)
        n = int((batch.tgt_out >= 0).sum())
        total_nll += float(nll) * n
        total_right += float(accuracy) * n
        count += n
    model.train(was_training)
    loss = total_nll / max(count, 1)
    return {"loss": loss, "accuracy": total_right / max(count, 1),
            "perplexity": math.exp(min(loss, 50.0))}  # fmt: skip
