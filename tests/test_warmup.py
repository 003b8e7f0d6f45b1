"""Sequence-length warm-up and the batch-size ramp of language-model training: the sizes
along the budget, batches cut from the same draws as without them, and the refusal where the
text is read in ordered segments (resume is in test_train)."""

import numpy as np
import pytest
import torch

from attnlab import ModelConfig
from attnlab.config import TrainConfig
from attnlab.data.tokenizers import ByteTokenizer
from attnlab.data.windows import RandomWindows, warmed_up
from attnlab.errors import UserError
from attnlab.tasks.lm import EncodedText, LanguageModelTask, TextData


def test_sizes_grow_in_a_straight_line_from_an_eighth_to_the_whole():
    assert warmed_up(256, 0.0, 0.5, multiple=8) == 32  # 256 / 8
    assert warmed_up(256, 0.25, 0.5, multiple=8) == 144  # halfway: 32 + 224 / 2
    assert warmed_up(256, 0.26, 0.5, multiple=8) == 144  # rounded down to a multiple of 8
    assert warmed_up(256, 0.5, 0.5, multiple=8) == 256
    assert warmed_up(256, 0.9, 0.5, multiple=8) == 256
    assert warmed_up(256, 0.0, 0.0) == 256  # off
    assert warmed_up(16, 0.0, 1.0) == 2
    assert warmed_up(4, 0.0, 1.0, multiple=8) == 4  # never more than the whole
    assert warmed_up(3, 0.0, 1.0) == 1  # never less than one
    sizes = [warmed_up(100, p / 50, 1.0) for p in range(51)]
    assert sizes == sorted(sizes) and sizes[-1] == 100


def test_a_cut_batch_is_the_start_of_the_whole_one():
    tokens = np.arange(1000) % 251
    whole = RandomWindows(tokens, context=32, batch_size=6, seed=3)
    cut = RandomWindows(tokens, context=32, batch_size=6, seed=3)
    for _ in range(3):  # the same draws, step after step
        x, y = next(whole)
        x_cut, y_cut = cut.take(8, 2)
        assert torch.equal(x_cut, x[:2, :8]) and torch.equal(y_cut, y[:2, :8])


def text() -> EncodedText:
    tokens = np.frombuffer(bytes(range(256)) * 20, dtype=np.uint8)
    parts = {"train": tokens[:4000], "valid": tokens[4000:4600], "test": tokens[4600:]}
    return EncodedText("synthetic", parts, {k: len(v) for k, v in parts.items()})


def task(model="transformer", **warmups) -> LanguageModelTask:
    cfg = ModelConfig(context=64, depth=1, width=16, heads=2, model=model)
    train = TrainConfig(batch_size=16, steps=100)
    return LanguageModelTask(text(), ByteTokenizer(), cfg, train, TextData(**warmups),
                             torch.device("cpu"))  # fmt: skip


def test_training_batches_grow_over_the_warm_up_share():
    lm = task(context_warmup=0.4, batch_warmup=0.2)
    shapes = [tuple(lm.next_batch(p)[0].shape) for p in (0.0, 0.1, 0.2, 0.4, 0.9)]
    assert shapes == [(2, 8), (9, 16), (16, 32), (16, 64), (16, 64)]  # 8 + 56·p/0.4, by 8s
    assert all(tuple(task().next_batch(p)[0].shape) == (16, 64) for p in (0.0, 0.5))


def test_ordered_segments_refuse_a_warm_up():
    with pytest.raises(UserError, match="--context-warmup"):
        task(model="xl", context_warmup=0.3)
