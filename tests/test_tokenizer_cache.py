"""A language model's tokenizer learns from an even sample of the training text, once: the
same text and settings read it back from the cache."""

import pytest

from attnlab.data import encoded
from attnlab.data.encoded import SAMPLE_PIECE, spread_sample, train_cached


def test_a_spread_sample_takes_pieces_from_all_along_the_text():
    text = b"".join(bytes([65 + i]) * SAMPLE_PIECE for i in range(9))  # nine runs: AAA…, BBB…
    sample = spread_sample(text, 3 * SAMPLE_PIECE)
    assert set(sample) - {ord("\n")} == {ord("A"), ord("D"), ord("G")}
    assert len(sample) == 3 * SAMPLE_PIECE + 2
    assert spread_sample(b"short", 1000) == b"short"


def test_a_trained_tokenizer_is_read_back_from_the_cache(tmp_path, monkeypatch):
    text = b"def f(x):\n    return x + 1\n" * 50
    first = train_cached("bpe", text, 300, tmp_path)

    def never(*args, **kwargs):
        raise AssertionError("learned again")

    monkeypatch.setattr(encoded, "train_tokenizer", never)
    again = train_cached("bpe", text, 300, tmp_path)
    assert again.identity() == first.identity()
    with pytest.raises(AssertionError, match="learned again"):
        train_cached("bpe", text, 301, tmp_path)  # other settings: not the cached one


def test_an_unreadable_cache_file_is_learned_again(tmp_path):
    text = b"import os\nprint(os.sep)\n" * 40
    first = train_cached("bpe", text, 280, tmp_path)
    (cached,) = (tmp_path / "tokenizers").iterdir()
    (cached / "tokenizer.json").write_text("{not json")
    assert train_cached("bpe", text, 280, tmp_path).identity() == first.identity()
