"""Scores of a masked language model against plain loops over its full output."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab import MaskedLM, ModelConfig
from attnlab.data.masking import Masking
from attnlab.data.tokenizers import MLM_SPECIALS, ByteTokenizer
from attnlab.masked_scores import EVAL_SEED, MaskedScores
from attnlab.models.mlm import IGNORE

MASKING = Masking(ByteTokenizer(MLM_SPECIALS))
TOKENS = np.random.default_rng(0).integers(0, 256, 23)  # two full windows of 8 and a part


def model():
    cfg = ModelConfig(vocab_size=259, context=10, depth=1, width=16, heads=2)
    return MaskedLM(cfg, cls_id=MASKING.cls_id).double().eval()


def windows():
    """[CLS] 8 tokens [SEP], the last window shorter, each alone (no padding)."""
    return [MASKING.frame(torch.tensor(TOKENS[i : i + 8])[None])[0][0] for i in (0, 8, 16)]


def test_pseudo_perplexity_masks_each_token_in_turn():
    """exp(−(1/N) Σ_t log P(w_t | W without t)), Salazar et al. 2020, eq. 2-3."""
    mlm, log_likelihood = model(), 0.0
    for sequence in windows():
        for t in range(1, len(sequence) - 1):  # not [CLS] or [SEP]
            masked = sequence.clone()
            masked[t] = MASKING.mask_id
            log_likelihood += F.log_softmax(mlm(masked[None])[0, t], -1)[sequence[t]].item()
    expected = math.exp(-log_likelihood / len(TOKENS))
    result = MaskedScores(mlm, MASKING, batch_size=3).pseudo_perplexity(TOKENS)
    assert result["pppl_tokens"] == len(TOKENS)
    assert result["pseudo_perplexity"] == pytest.approx(expected, rel=1e-6)  # float32 logits


def test_masked_token_scores_are_the_mean_over_the_fixed_masks():
    mlm = model()
    scores = MaskedScores(mlm, MASKING, batch_size=2)
    sequences, real = scores.framed(TOKENS)
    inputs, targets = MASKING(sequences, real, torch.Generator().manual_seed(EVAL_SEED))
    chosen = targets != IGNORE
    logits = mlm(inputs, real)[chosen]
    result = scores.masked_tokens(TOKENS)
    assert result["predicted"] == chosen.sum().item()
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, targets[chosen]).item())
    expected = (logits.argmax(-1) == targets[chosen]).double().mean().item()
    assert result["accuracy"] == pytest.approx(expected)
    assert scores.masked_tokens(TOKENS) == result, "the masks are not fixed"
