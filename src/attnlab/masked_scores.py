"""Scores of a masked language model on a text: loss and accuracy at a fixed set of masks, and
pseudo-perplexity.

The fixed masks come from a generator with a constant seed, so every evaluation of every run
on the same text and tokenizer asks about the same positions, and scores compare.

Pseudo-perplexity (Salazar et al. 2020, "Masked Language Model Scoring", eq. 2-3): each token
in turn is replaced by `[MASK]` and scored given all the others,

    PLL(W) = Σ_t log P(w_t | W without t),    PPPL = exp(−PLL / N),

one forward pass per token; a masked model's stand-in for a language model's perplexity.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.masking import Masking, text_windows
from .models.mlm import IGNORE

EVAL_SEED = 20191  # the fixed masks of every evaluation


class MaskedScores:
    """Scores of `model` on texts, framed and masked by `masking`, in batches of `batch_size`
    on `device`. The model is put in eval mode while it is scored."""

    def __init__(self, model: nn.Module, masking: Masking, batch_size: int = 32,
                 device: torch.device | str = "cpu"):  # fmt: skip
        self.model, self.masking, self.batch_size, self.device = model, masking, batch_size, device

    def framed(self, tokens: np.ndarray) -> tuple[Tensor, Tensor]:
        """All of `tokens` as `[CLS]` window `[SEP]` sequences that fill the model's context,
        and the mask of their real tokens."""
        return self.masking.frame(*text_windows(tokens, self.model.cfg.context - 2))

    def hidden(self, tokens: Tensor, real: Tensor) -> Tensor:
        return self.model.encode(tokens.to(self.device), real.to(self.device))

    def predict(self, hidden: Tensor) -> Tensor:
        return self.model.head(hidden).float()  # (n, vocab_size)

    @torch.no_grad()
    def masked_tokens(self, tokens: np.ndarray) -> dict[str, float]:
        """Mean loss (nats) and accuracy over the chosen positions of the fixed masks, and how
        many positions were predicted, over the whole of `tokens`."""
        was_training = self.model.training
        self.model.eval()
        sequences, real = self.framed(tokens)
        inputs, targets = self.masking(sequences, real, torch.Generator().manual_seed(EVAL_SEED))
        nll, correct, count = 0.0, 0, 0
        for start in range(0, len(inputs), self.batch_size):
            part = slice(start, start + self.batch_size)
            y = targets[part].to(self.device)
            chosen = y != IGNORE
            logits = self.predict(self.hidden(inputs[part], real[part])[chosen])
            nll += F.cross_entropy(logits, y[chosen], reduction="sum").item()
            correct += int((logits.argmax(-1) == y[chosen]).sum())
            count += int(chosen.sum())
        self.model.train(was_training)
        return {
            "loss": nll / max(count, 1),
            "accuracy": correct / max(count, 1),
            "predicted": count,
        }

    @torch.no_grad()
    def pseudo_perplexity(self, tokens: np.ndarray) -> dict[str, float]:
        """exp of the mean negative pseudo-log-likelihood of `tokens` (Salazar et al. 2020),
        each token masked in turn within its window; special tokens are not scored."""
        was_training = self.model.training
        self.model.eval()
        nll, count = 0.0, 0
        for sequence, real in zip(*self.framed(tokens), strict=True):
            positions = torch.nonzero(real & ~self.masking.special[sequence]).flatten()
            for chunk in positions.split(self.batch_size):
                rows = torch.arange(len(chunk))
                copies = sequence.repeat(len(chunk), 1)  # (n, t): copy i masks position chunk[i]
                copies[rows, chunk] = self.masking.mask_id
                hidden = self.hidden(copies, real.expand(len(chunk), -1))
                logits = self.predict(hidden[rows, chunk.to(self.device)])
                log_p = F.log_softmax(logits, dim=-1)[rows, sequence[chunk].to(self.device)]
                nll -= log_p.sum().item()
                count += len(chunk)
        self.model.train(was_training)
        return {"pseudo_perplexity": math.exp(nll / max(count, 1)), "pppl_tokens": count}
