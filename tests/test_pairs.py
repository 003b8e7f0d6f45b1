"""Sentence pairs: files with or without a header, references grouped, generated tasks, batches
by length and token budget, and the Noam schedule."""

import gzip
import hashlib
import json
from itertools import islice

import numpy as np
import pytest

from attnlab import ModelConfig
from attnlab.config import TrainConfig
from attnlab.data.multi30k import MULTI30K_SHA256, MULTI30K_URL, load_multi30k
from attnlab.data.pair_batches import IGNORE, PairBatches
from attnlab.data.pairs import generate_task, read_pairs
from attnlab.errors import UserError
from attnlab.models import Seq2Seq
from attnlab.training.optim import make_schedule
from tests.test_tables import write


def test_a_tsv_without_header_keeps_quotes_and_groups_references(tmp_path):
    path = write(tmp_path / "pairs.tsv", 'Hallo "Welt"\tHello "world"\nJa\tYes\nJa\tYeah\n')
    pairs = read_pairs(path)
    assert pairs.sources == ['Hallo "Welt"', "Ja"]
    assert pairs.references == [['Hello "world"'], ["Yes", "Yeah"]]
    assert pairs.pairs() == [(0, 'Hello "world"'), (1, "Yes"), (1, "Yeah")]
    assert pairs.where(1) == f"{path}, line 2"


def test_headers_name_the_columns_in_csv_and_jsonl(tmp_path):
    csv_file = write(tmp_path / "p.csv", 'id,de,en\n1,"eins, zwei",one two\n2,drei,three\n')
    pairs = read_pairs(csv_file, "de", "en")
    assert pairs.sources == ["eins, zwei", "drei"] and pairs.references == [["one two"], ["three"]]
    guessed = read_pairs(write(tmp_path / "g.csv", "input,output\na,b\n"))
    assert guessed.sources == ["a"]
    rows = [{"source": "x", "target": "y"}, {"source": "x", "target": "z"}]
    jsonl = write(tmp_path / "p.jsonl", "\n".join(json.dumps(r) for r in rows))
    assert read_pairs(jsonl).references == [["y", "z"]]


@pytest.mark.parametrize(
    "name, text, columns, message",
    [
        ("one.tsv", "just one column\nanother\n", (), "line 1: one column"),
        ("empty.tsv", "a\tb\nc\t \n", (), "line 2: empty or missing target"),
        ("nothing.tsv", "", (), "no sentence pairs"),
        ("header.csv", "source,target\n", (), "only a header"),
        ("named.csv", "a,b\nc,d\n", ("de", "en"), "no source column 'de'"),
        ("half.jsonl", '{"source": "a", "other": "b"}\n', (), "cannot tell the source and"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_with_file_line_and_problem(tmp_path, name, text, columns, message):
    path = write(tmp_path / name, text)
    with pytest.raises(UserError, match=message) as error:
        read_pairs(path, *columns)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("task", ["copy", "reverse", "sort", "add"])
def test_generated_tasks_hold_out_their_sources(task):
    splits = generate_task(task, (300, 50, 50), 2, 6, seed=3)
    train = set(splits["train"].sources)
    for name in ("valid", "test"):
        assert len(splits[name]) == 50 and not train & set(splits[name].sources)
    for source, (target,) in zip(splits["test"].sources, splits["test"].references, strict=True):
        expected = {"copy": source, "reverse": source[::-1], "sort": "".join(sorted(source))}
        if task == "add":
            a, b = source.split("+")
            assert int(target) == int(a) + int(b) and max(len(a), len(b)) <= 6
        else:
            assert target == expected[task] and 2 <= len(source) <= 6
    with pytest.raises(UserError, match="task:copy, task:reverse"):
        generate_task("shout", (1, 1, 1), 1, 2)


def batches(**options):
    sources = [np.arange(n) for n in (3, 9, 4, 8, 2)]
    targets = [np.arange(10, 10 + n) for n in (5, 1, 3, 7, 2, 2)]
    example = [0, 1, 2, 3, 4, 4]  # the last source has two references
    return PairBatches(sources, targets, example, bos_id=98, eos_id=99, **options)


def test_a_batch_holds_source_eos_bos_target_and_ignored_padding():
    pairs = batches(batch_size=2)
    batch = pairs.collate(np.array([0, 5]))
    assert batch.src.tolist() == [[0, 1, 2, 99], [0, 1, 99, 99]]
    assert batch.src_mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert batch.tgt_in.tolist() == [[98, 10, 11, 12, 13, 14], [98, 10, 11, 99, 99, 99]]
    assert batch.tgt_out.tolist() == [[10, 11, 12, 13, 14, 99], [10, 11, 99] + [IGNORE] * 3]
    assert batch.index.tolist() == [0, 4]


def test_token_budget_batches_cover_every_pair_once_within_the_budget():
    pairs = batches(batch_size=100, batch_tokens=12, seed=1)
    seen = []
    for batch in pairs.eval_batches():
        assert batch.src.numel() <= 12 or len(batch.src) == 1
        assert batch.tgt_in.numel() <= 12 or len(batch.tgt_in) == 1
        seen += batch.index.tolist()
    assert sorted(seen) == [0, 1, 2, 3, 4, 4]
    first, again = (list(islice(pairs.train_indices(), 9)) for _ in range(2))
    assert [b.tolist() for b in first] == [b.tolist() for b in again]  # same seed
    shards = [pairs.train_indices(rank, 2) for rank in range(2)]
    merged = [next(shards[k % 2]).tolist() for k in range(6)]
    assert merged == [b.tolist() for b in first[:6]]


def test_noam_schedule_follows_the_papers_formula():
    model = Seq2Seq(ModelConfig(vocab_size=12, context=8, depth=1, width=32, heads=2))
    cfg = TrainConfig(steps=10, schedule="noam", warmup=4000)
    schedule = make_schedule(cfg, model)
    for step in (1, 100, 3999, 4000, 4001, 10_000, 100_000):
        expected = 32**-0.5 * min(step**-0.5, step * 4000**-1.5)
        assert schedule(step - 1, 0.0) == pytest.approx(expected, rel=1e-12)
    assert max(schedule(s, 0.0) for s in range(8000)) == pytest.approx((32 * 4000) ** -0.5)
    doubled = TrainConfig(steps=10, schedule="noam", warmup=4000,
                          options={"noam": {"factor": 2.0}})  # fmt: skip
    assert make_schedule(doubled, model)(7, 0.0) == pytest.approx(2 * schedule(7, 0.0))
    no_warmup = make_schedule(TrainConfig(steps=10, schedule="noam", warmup=0), model)
    assert no_warmup(99, 0.0) == pytest.approx(32**-0.5 * 100**-0.5)


def multi30k_files(folder):
    """Small gzipped files in Multi30k's layout (German and English, line by line)."""
    folder.mkdir()
    digests = {}
    for stem in ("train", "val", "test_2016_flickr"):
        for language, words in (("de", "Ein Hund {}"), ("en", "A dog {}")):
            name = f"{stem}.{language}.gz"
            (folder / name).write_bytes(
                gzip.compress("\n".join(words.format(i) for i in range(3)).encode())
            )
            digests[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return digests


def test_multi30k_is_downloaded_checked_and_paired_offline(tmp_path):
    assert MULTI30K_URL.startswith("https://raw.githubusercontent.com/multi30k/dataset/")
    assert set(MULTI30K_SHA256) == {f"{s}.{lang}.gz" for s in ("train", "val", "test_2016_flickr")
                                    for lang in ("de", "en")}  # fmt: skip
    assert all(len(d) == 64 for d in MULTI30K_SHA256.values())
    digests = multi30k_files(tmp_path / "www")
    url = (tmp_path / "www").as_uri() + "/"
    splits = load_multi30k("de-en", url, digests, tmp_path / "cache")
    assert splits["test"].sources[2] == "Ein Hund 2" and splits["test"].references[2] == ["A dog 2"]
    assert load_multi30k("en-de", url, digests, tmp_path / "cache")["train"].sources[0] == "A dog 0"
    with pytest.raises(UserError, match="SHA-256"):
        load_multi30k("de-en", url, {**digests, "val.en.gz": "0" * 64}, tmp_path / "other")
    with pytest.raises(UserError, match="de-en and en-de"):
        load_multi30k("de-fr", url, digests, tmp_path / "cache")
