"""Bits per byte: every prediction scored once, with at least half a context before it."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab import LanguageModel, ModelConfig
from attnlab.evaluate import bits_per_byte, compressor_bits_per_byte, strided_windows


@pytest.mark.parametrize("n, context", [(2, 8), (9, 8), (10, 8), (100, 8), (101, 7), (37, 1)])
def test_strided_windows_score_every_prediction_exactly_once(n, context):
    scored = []
    for start, length, first in strided_windows(n, context):
        assert length <= context and start + length <= n - 1
        targets = range(start + 1 + first, start + length + 1)
        scored += targets
        if start > 0:
            assert all(j - start >= context - context // 2 for j in targets)
    assert scored == list(range(1, n))


def test_bits_per_byte_equals_the_cross_entropy_of_each_window_from_scratch():
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=50, context=8, depth=1, width=16, heads=2)).eval()
    tokens = np.random.default_rng(0).integers(0, 50, 30)
    expected = 0.0
    for start, length, first in strided_windows(30, 8):
        window = torch.as_tensor(tokens[start : start + length + 1])
        logits = model(window[None, :-1])[0]
        nll = F.cross_entropy(logits, window[1:], reduction="none")
        expected += nll[first:].sum().item() / math.log(2)
    result = bits_per_byte(model, tokens, batch_size=3)
    assert result["bytes"] == 29
    assert result["bits_per_byte"] == pytest.approx(expected / 29, rel=1e-5)


def test_compressors_are_measured_on_the_same_bytes():
    text = b"abcabcabc" * 1000
    rates = compressor_bits_per_byte(text)
    assert set(rates) == {"gzip -9", "bzip2 -9", "xz -9"} and all(r < 1 for r in rates.values())
