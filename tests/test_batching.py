import itertools

import numpy as np
import pytest
import torch

from attnlab.data.batching import ClassificationBatches
from attnlab.data.tables import LabeledTexts
from attnlab.data.tokenizers import train_tokenizer
from attnlab.errors import UserError


def make(lengths, context=8, batch_size=4, seed=0, pad_id=0):
    sequences = [np.arange(1, n + 1, dtype=np.int32) + 10 * i for i, n in enumerate(lengths)]
    labels = np.arange(len(lengths)) % 3
    return ClassificationBatches(sequences, labels, context, batch_size, pad_id, seed)


def test_padding_is_masked_and_real_tokens_are_kept_in_order():
    batches = make([3, 5, 1, 8, 2, 6], pad_id=99)
    for batch in batches.eval_batches():
        b, t = batch.tokens.shape
        assert batch.mask.shape == (b, t) and batch.mask.dtype == torch.bool
        assert batch.tokens.dtype == torch.int64 and batch.labels.shape == (b,)
        for row, i in enumerate(batch.index.tolist()):
            n = int(batch.mask[row].sum())
            assert batch.mask[row, :n].all() and not batch.mask[row, n:].any()
            assert batch.tokens[row, :n].tolist() == batches.sequences[i].tolist()
            assert (batch.tokens[row, n:] == 99).all()
            assert batch.labels[row] == i % 3


def test_long_texts_are_cut_to_the_context_and_counted():
    batches = make([3, 12, 9, 8], context=8)
    assert batches.truncated == 2 and batches.longest == 12
    widths = [batch.tokens.shape[1] for batch in batches.eval_batches()]
    assert max(widths) == 8


def test_evaluation_sees_every_example_once_with_similar_lengths_together():
    lengths = [7, 1, 5, 2, 8, 3, 6, 4, 2]
    batches = make(lengths, batch_size=3)
    seen = [batch.index.tolist() for batch in batches.eval_batches()]
    assert sorted(itertools.chain(*seen)) == list(range(9))
    assert [sorted(lengths[i] for i in b) for b in seen] == [[1, 2, 2], [3, 4, 5], [6, 7, 8]]


def test_training_batches_are_endless_shuffled_and_fixed_by_seed():
    lengths = list(range(1, 41))
    first = [b.index.tolist() for b in itertools.islice(make(lengths, seed=1).train_batches(), 25)]
    again = [b.index.tolist() for b in itertools.islice(make(lengths, seed=1).train_batches(), 25)]
    other = [b.index.tolist() for b in itertools.islice(make(lengths, seed=2).train_batches(), 25)]
    assert first == again and first != other
    epoch = list(itertools.chain(*first[:10]))  # 40 examples, batches of 4
    assert sorted(epoch) == list(range(40))
    assert list(itertools.chain(*first[10:20])) != epoch  # the next pass is shuffled anew


def test_training_batches_group_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=400).tolist()
    batches = make(lengths, context=200, batch_size=8)
    padded = sum(b.tokens.numel() for b in itertools.islice(batches.train_batches(), 50))
    real = sum(int(b.mask.sum()) for b in itertools.islice(batches.train_batches(), 50))
    assert real / padded > 0.9  # random batches of these lengths would be about 60% real


def test_processes_share_out_the_batches():
    lengths = list(range(1, 21))
    whole = [b.index.tolist() for b in itertools.islice(make(lengths).train_batches(), 10)]
    rank0 = [b.index.tolist() for b in itertools.islice(make(lengths).train_batches(0, 2), 5)]
    rank1 = [b.index.tolist() for b in itertools.islice(make(lengths).train_batches(1, 2), 5)]
    assert rank0 == whole[0::2] and rank1 == whole[1::2]


def test_text_with_no_tokens_becomes_one_real_position():
    batches = ClassificationBatches(
        [np.zeros(0, np.int32), np.array([5, 6])], np.array([0, 1]), 8, 2
    )
    batch = next(batches.eval_batches())
    assert batch.mask.sum(dim=1).tolist() == [1, 2]


def test_from_texts_encodes_with_the_tokenizer_and_maps_labels():
    data = LabeledTexts(["good film", "bad film", "good good"], ["pos", "neg", "pos"])
    tokenizer = train_tokenizer("words", data.texts)
    batches = ClassificationBatches.from_texts(tokenizer, data, ["neg", "pos"], 16, 8)
    batch = next(batches.eval_batches())
    order = batch.index.tolist()
    assert batch.labels.tolist() == [[1, 0, 1][i] for i in order]
    assert tokenizer.decode(batch.tokens[order.index(1)][batch.mask[order.index(1)]]) == "bad film"


def test_empty_data_or_bad_sizes_are_user_errors():
    with pytest.raises(UserError, match="no examples"):
        ClassificationBatches([], np.array([]), 8, 2)
    with pytest.raises(UserError, match="must be positive"):
        make([1, 2], context=0)
