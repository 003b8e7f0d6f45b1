import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer as HFTokenizer

from attnlab.data.tokenizers import (
    CHUNK_CHARS,
    KINDS,
    load_tokenizer,
    split_points,
    train_tokenizer,
)
from attnlab.errors import UserError

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy dog sleeps; the fox runs away!",
    "Über café naïve — déjà vu, 日本語のテキスト 🙂",
    "numbers 123 456 and tabs\tand\nnewlines\r\n",
] * 5
ODD = "  héllo\t\r\n\n  wörld\u00a0日本語 🙂\u2028\x00 end  \n\n"


def trained(kind, vocab_size=None):
    return train_tokenizer(kind, CORPUS, vocab_size)


@pytest.mark.parametrize("kind", ["bytes", "bpe"])
def test_byte_level_kinds_round_trip_any_text_exactly(kind):
    tok = trained(kind, 300 if kind == "bpe" else None)
    for text in CORPUS + [ODD, "", "never seen: ʘ‿ʘ ∮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]:
        ids = tok.encode(text)
        assert ids.dtype == np.int32 and (ids >= 0).all() and (ids < tok.vocab_size).all()
        assert tok.decode(ids) == text


def test_bpe_merges_frequent_pairs_into_fewer_tokens_than_bytes():
    tok = trained("bpe", 400)
    text = CORPUS[0]
    assert len(tok.encode(text)) < len(text.encode("utf-8"))
    assert tok.vocab_size <= 400


def test_bytes_encode_utf8_values_and_accept_raw_bytes():
    tok = trained("bytes")
    assert tok.vocab_size == 256
    assert tok.encode("é").tolist() == [0xC3, 0xA9]
    assert tok.encode(b"\xff\x00").tolist() == [255, 0]
    assert tok.decode([0xC3]) == "\ufffd"  # a character cut in half decodes, replaced


def test_chars_round_trip_seen_text_and_map_unseen_to_unknown():
    tok = trained("chars")
    assert tok.vocab_size == len(set("".join(CORPUS))) + 2
    for text in CORPUS:
        assert tok.decode(tok.encode(text)) == text
    ids = tok.encode("fox ʘ")
    assert ids[-1] == tok.unk_id and (ids[:-1] > 1).all()
    assert tok.decode(ids) == "fox \ufffd"


def test_chars_cap_keeps_the_most_frequent():
    tok = trained("chars", 5)  # pad, unk and three characters
    assert tok.vocab_size == 5
    counts = {c: "".join(CORPUS).count(c) for c in set("".join(CORPUS))}
    top = sorted(counts, key=lambda c: -counts[c])[:3]
    assert sorted(tok.chars) == sorted(top)


def test_words_lowercase_split_punctuation_and_map_unseen_to_unknown():
    tok = trained("words")
    ids = tok.encode("The FOX, zebra!")
    unk = tok.hf.token_to_id("<unk>")
    assert tok.decode(ids) == "the fox , <unk> !"
    assert ids[3] == unk and unk == 1 and tok.pad_id == 0


def test_words_cap_counts_reserved_ids_and_keeps_most_frequent():
    tok = train_tokenizer("words", ["Cat cat dog dog dog bird", "cat emu"], 4)
    assert tok.vocab_size == 4  # <pad>, <unk> and the two most frequent words
    assert set(tok.hf.get_vocab()) == {"<pad>", "<unk>", "cat", "dog"}


def test_default_word_cap_is_the_seeds_50000():
    texts = [" ".join(f"w{i}" for i in range(j, 60_000, 7)) for j in range(7)]
    assert train_tokenizer("words", texts).vocab_size == 50_000


def test_wordpiece_splits_unseen_words_into_known_pieces():
    tok = trained("wordpiece", 200)
    ids = tok.encode("The foxes")
    assert tok.decode(ids) == "the foxes"
    assert tok.hf.token_to_id("[UNK]") not in ids.tolist()
    assert tok.encode("Ω").tolist() == [tok.hf.token_to_id("[UNK]")]


@pytest.mark.parametrize("kind", list(KINDS))
def test_save_and_load_give_identical_ids(tmp_path, kind):
    tok = trained(kind, {"chars": None, "bytes": None, "bpe": 300}.get(kind, 60))
    tok.save(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == (
        {"tokenizer_attnlab.json", "tokenizer.json"} if tok.hf else {"tokenizer_attnlab.json"}
    )
    loaded = load_tokenizer(tmp_path)
    assert type(loaded) is type(tok) and loaded.vocab_size == tok.vocab_size
    for text in CORPUS[:4] + [ODD]:
        assert np.array_equal(loaded.encode(text), tok.encode(text))
        assert loaded.decode(loaded.encode(text)) == tok.decode(tok.encode(text))


@pytest.mark.parametrize("kind", list(KINDS))
def test_batch_encoding_matches_one_by_one_and_decode_takes_tensors(kind):
    tok = trained(kind, {"chars": None, "bytes": None, "bpe": 300}.get(kind, 60))
    batch = tok.encode_batch(CORPUS[:4])
    for text, ids in zip(CORPUS[:4], batch, strict=True):
        assert np.array_equal(ids, tok.encode(text))
    assert tok.decode(torch.from_numpy(batch[0])) == tok.decode(batch[0])


@pytest.mark.parametrize("kind", ["bpe", "words", "wordpiece"])
def test_long_text_encoded_in_chunks_matches_encoding_it_whole(kind, monkeypatch):
    tok = trained(kind, 300 if kind == "bpe" else 60)
    text = "".join(CORPUS) * 4 + ODD
    whole = np.array(tok.hf.encode(text, add_special_tokens=False).ids, dtype=np.int32)
    monkeypatch.setattr("attnlab.data.tokenizers.CHUNK_CHARS", 50)
    assert len(split_points(text)) > 10
    assert np.array_equal(tok.encode(text), whole)


def test_split_points_cut_only_before_a_newline_after_a_non_space():
    text = ("word \n\n" + "x" * 10 + "\n") * (CHUNK_CHARS // 8)
    cuts = split_points(text)
    assert cuts[0] == 0 and cuts[-1] == len(text) and len(cuts) > 2
    for cut in cuts[1:-1]:
        assert text[cut] == "\n" and not text[cut - 1].isspace()


def test_unknown_kind_and_bad_vocab_sizes_are_user_errors():
    with pytest.raises(UserError, match="unknown tokenizer 'gpt'"):
        train_tokenizer("gpt", CORPUS)
    with pytest.raises(UserError, match="exactly 256"):
        train_tokenizer("bytes", CORPUS, 512)
    with pytest.raises(UserError, match="more than 256"):
        train_tokenizer("bpe", CORPUS, 100)
    with pytest.raises(UserError, match="too little text"):
        train_tokenizer("words", [], 100)
    with pytest.raises(UserError, match="no text"):
        train_tokenizer("chars", [""])


def test_missing_or_corrupt_tokenizer_files_are_named(tmp_path):
    settings, hf_file = tmp_path / "tokenizer_attnlab.json", tmp_path / "tokenizer.json"
    with pytest.raises(UserError, match=r"tokenizer_attnlab\.json: missing tokenizer settings"):
        load_tokenizer(tmp_path)
    settings.write_text("{oops")
    with pytest.raises(UserError, match=r"tokenizer_attnlab\.json: not valid JSON"):
        load_tokenizer(tmp_path)
    settings.write_text(json.dumps({"kind": "sentencepiece"}))
    with pytest.raises(UserError, match=r"tokenizer_attnlab\.json: not an attnlab tokenizer"):
        load_tokenizer(tmp_path)
    trained("bpe", 300).save(tmp_path)
    hf_file.unlink()
    with pytest.raises(UserError, match=r"tokenizer\.json: missing bpe tokenizer file"):
        load_tokenizer(tmp_path)
    trained("bpe", 300).save(tmp_path)
    data = json.loads(hf_file.read_text())
    data["model"] = {"type": "nonsense"}
    hf_file.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"tokenizer\.json: corrupt bpe tokenizer"):
        load_tokenizer(tmp_path)
    settings.write_text(json.dumps({"kind": "chars", "format_version": 2, "chars": "aa"}))
    with pytest.raises(UserError, match=r"corrupt chars tokenizer"):
        load_tokenizer(tmp_path)
    settings.write_text(json.dumps({"kind": "bytes", "format_version": 7}))
    with pytest.raises(UserError, match="newer attnlab"):
        load_tokenizer(tmp_path)


@pytest.mark.parametrize("kind", ["bpe", "words", "wordpiece"])
def test_huggingface_reads_our_tokenizer_file_as_is(tmp_path, kind):
    tok = trained(kind, 300)
    tok.save(tmp_path)
    theirs = HFTokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert theirs.encode(CORPUS[0], add_special_tokens=False).ids == tok.encode(CORPUS[0]).tolist()


def test_bpe_is_exact_on_bytes_that_are_not_utf8():
    tok = trained("bpe", 300)
    data = bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))
    data += "ordinary text, é and 😀".encode() + b"\xff\xfe" + b"tail"
    ids = tok.encode(data)
    assert tok.decode_bytes(ids) == data
    assert tok.decode_bytes(tok.encode("plain")) == b"plain"
    escaped = data.decode("utf-8", errors="surrogateescape")  # how Python hands argv over
    assert np.array_equal(tok.encode(escaped), ids)
