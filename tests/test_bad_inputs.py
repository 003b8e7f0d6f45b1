"""Every bad input a one-line message: exit status 2, the message names the flag or file and
what is wrong, and nothing already saved changes. One row per input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from attnlab.cli import main

TINY = ["--context", "16", "--depth", "1", "--width", "32", "--heads", "2", "--batch-size", "4"]
TINY += ["--eval-bytes", "200", "--sample-tokens", "4"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A text, a trained language model run, a trained classifier run, and odd files."""
    root = tmp_path_factory.mktemp("world")
    text = root / "corpus.txt"
    text.write_text("def f(x):\n    return x * 2\n" * 80)
    csv = root / "labels.csv"
    rows = [f"{'good' if i % 2 else 'bad'} text number {i},{'pos' if i % 2 else 'neg'}"
            for i in range(60)]  # fmt: skip
    csv.write_text("text,label\n" + "\n".join(rows) + "\n")
    cache = root / "cache"
    base = ["--data", str(text), *TINY, "--steps", "2"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATTNLAB_CACHE", str(cache))
        assert main(["train", "lm", *base, "--out", str(root / "lm")]) == 0
        classify = ["train", "classify", "--data", str(csv), "--steps", "2", "--out"]
        assert main([*classify, str(root / "clf"), *TINY[:10]]) == 0
    (root / "empty.txt").write_text("")
    (root / "a-file").write_text("not a folder")
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("mine")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    (root / "one-column.csv").write_text("text\nhello\nworld\n")
    (root / "listops").mkdir()
    (root / "listops" / "train.tsv").write_text("text\tlabel\n")
    return {"root": root, "text": text, "csv": csv, "cache": cache,
            "lm": root / "lm", "clf": root / "clf"}  # fmt: skip


def corrupt(name: str, content: str):
    """A preparation: a copy of a run (`{copy}`) with one file replaced."""

    def prepare(copy: Path) -> None:
        (copy / name).write_text(content)

    return prepare


def truncate(name: str):
    def prepare(copy: Path) -> None:
        data = (copy / name).read_bytes()
        (copy / name).write_bytes(data[: len(data) // 2])

    return prepare


def strip_metadata(copy: Path) -> None:
    path = copy / "checkpoint.safetensors"
    save_file(load_file(path), path)


LM = ["train", "lm", "--data", "{text}", "--steps", "1", "--out", "{root}/new"]
CASES = [
    # training: sizes, numbers and choices, checked before any data is read
    (LM + ["--width", "1000000000"], "would have about"),
    (LM + ["--depth", "1000000"], "would have about"),
    (LM + ["--lr", "nan"], "--lr: must be a finite number"),
    (LM + ["--lr", "-1"], "--lr: must be above 0"),
    (LM + ["--lr", "abc"], "--lr: invalid float value"),
    (LM + ["--beta2", "1.5"], "--beta2: must be at least 0 and below 1"),
    (LM + ["--eval-bytes", "-1"], "--eval-bytes: must be at least 0"),
    (LM + ["--sample-tokens", "-1"], "--sample-tokens: must be at least 0"),
    (LM + ["--glob", ""], "--glob: give a pattern"),
    (LM + ["--device", "meta"], "--device: attnlab runs on cpu, cuda, mps, not 'meta'"),
    (LM + ["--device", "gpu7"], "--device: 'gpu7' is not a device name"),
    (LM + ["--minutes", "nan"], "--minutes: must be a finite number"),
    (LM + ["--steps", "0"], "give a budget"),
    (LM + ["--heads", "3", "--width", "32"], "--width 32 is not divisible by --heads 3"),
    (LM + ["--context", "0"], "--context: must be at least 1"),
    (LM + ["--batch-size", "0"], "--batch-size: must be at least 1"),
    (LM + ["--dropout", "1"], "--dropout: must be at least 0 and below 1"),
    (LM + ["--valid-fraction", "0.7"], "--valid-fraction: must be at least 0 and below 0.5"),
    (LM + ["--warmup", "-3"], "--warmup: must be at least 0"),
    (LM + ["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (LM + ["--attention", "nystrom"], "a language model needs attention that can be causal"),
    (LM + ["--position", "alibi", "--attention", "sparse"], "--position alibi needs attention"),
    (LM + ["--nystrom.landmarks", "8"], "--nystrom.landmarks applies to --attention nystrom"),
    (LM + ["--model", "xl", "--xl.memory", "-1"], "--xl.memory: must be at least 0"),
    (LM + ["--sparse.pattern", "zigzag"], "argument --sparse.pattern: invalid choice"),
    (LM + ["--model", "universal", "--depth", "3"], "--depth: --model universal has one shared"),
    (LM + ["--tokenizer", "bpe", "--vocab-size", "10"], "vocab_size must be more than 256"),
    (LM + ["--tokenizer", "words"], "argument --tokenizer: invalid choice: 'words'"),
    # training: data and folders
    (
        ["train", "lm", "--data", "{root}/missing.txt", "--steps", "1", "--out", "{root}/new"],
        "missing.txt: no such file or folder",
    ),  # fmt: skip
    (
        ["train", "lm", "--data", "{root}/empty.txt", "--steps", "1", "--out", "{root}/new"],
        "the text is empty",
    ),  # fmt: skip
    (LM[:-1] + ["{root}/a-file"], "a-file: is a file, not a folder"),
    (LM[:-1] + ["{lm}"], "already holds a run; resume it with --resume"),
    (LM[:-1] + ["{root}/foreign"], "foreign: holds files but no attnlab run"),
    (LM[:-1] + ["{root}/foreign", "--overwrite"], "foreign: holds files but no attnlab run"),
    (["train", "lm", "--resume", "{root}/nothing", "--steps", "3"], "no checkpoint.safetensors"),
    (["train", "lm", "--resume", "{lm}", "--out", "{root}/other"], "leave out --out"),
    (["train", "lm", "--resume", "{lm}", "--width", "64"], "cannot change (--width)"),
    (["train", "classify", "--resume", "{lm}", "--steps", "3"], "holds a lm run, not classify"),
    (
        ["train", "lm", "--resume", "{copy}", "--steps", "3"],
        "unreadable",
        truncate("checkpoint.safetensors"),
    ),  # fmt: skip
    (
        ["train", "lm", "--resume", "{copy}", "--steps", "3"],
        "checkpoint without its metadata",
        strip_metadata,
    ),  # fmt: skip
    (["train", "classify", "--steps", "1", "--out", "{root}/new"], "give --data"),
    (
        [
            "train",
            "classify",
            "--data",
            "{root}/one-column.csv",
            "--steps",
            "1",
            "--out",
            "{root}/new",
        ],
        "cannot tell which column holds the label",
    ),  # fmt: skip
    (
        [
            "train",
            "classify",
            "--data",
            "{csv}",
            "--steps",
            "1",
            "--tokenizer",
            "words",
            "--vocab-size",
            "2",
            "--out",
            "{root}/new",
        ],
        "vocab_size must be more than 2",
    ),  # fmt: skip
    # generate
    (["generate", "{lm}", "--tokens", "-1"], "--tokens: must be at least 1"),
    (["generate", "{lm}", "--top-k", "0"], "--top-k: must be at least 1"),
    (["generate", "{lm}", "--top-p", "0"], "--top-p: must be above 0 and at most 1"),
    (["generate", "{lm}", "--top-p", "1.5"], "--top-p: must be above 0 and at most 1"),
    (["generate", "{lm}", "--temperature", "nan"], "--temperature: must be a finite number"),
    (["generate", "{lm}", "--temperature", "-1"], "--temperature: must be at least 0"),
    (["generate", "{clf}"], "holds a classifier, not a language model"),
    (["generate", "{root}/nothing"], "nothing: no such run folder"),
    # eval
    (["eval", "{lm}", "--memory", "-5"], "--memory: must be at least 0"),
    (["eval", "{lm}", "--memory", "5"], "--memory applies to Transformer-XL runs"),
    (["eval", "{clf}", "--split", "all"], "--split all scores a language model"),
    (["eval", "{lm}", "--data", "{root}/missing.txt"], "missing.txt: no such file or folder"),
    (["eval", "{copy}"], "train.json: not valid JSON", corrupt("train.json", "{oops")),
    (
        ["eval", "{copy}"],
        "train.json: unknown setting(s) colour",
        corrupt("train.json", '{"task": "lm", "data": {"colour": "red"}}'),
    ),  # fmt: skip
    (["eval", "{copy}"], "config.json: not valid JSON", corrupt("config.json", "[1, 2")),
    (
        ["eval", "{copy}"],
        "model.safetensors: unreadable or truncated",
        truncate("model.safetensors"),
    ),  # fmt: skip
    (
        ["eval", "{copy}", "--data", "{csv}"],
        "labels.json: expected a JSON list of class names",
        corrupt("labels.json", '{"a": 1}'),
    ),  # fmt: skip
    # predict
    (["predict", "{clf}", "--file", "{root}/latin1.txt"], "latin1.txt: not UTF-8"),
    (["predict", "{clf}"], "give exactly one of --text TEXT or --file PATH"),
    (["predict", "{lm}", "--text", "hi"], "holds a language model, not a classifier"),
    # data and bench
    (
        ["data", "listops", "--out", "{root}/listops", "--size", "20", "--max-length", "60"],
        "train.tsv: already exists",
    ),  # fmt: skip
    (["data", "listops", "--size", "20"], "--out: give the folder to write to"),
    (["bench", "attention", "--lengths", "0"], "--lengths: must be at least 1"),
    (["bench", "attention", "--kinds", "dense", "spiral"], "unknown benchmark kind 'spiral'"),
]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_bad_input_gives_one_line_and_exit_status_2(case, world, tmp_path, capsys, monkeypatch):
    argv, message, *prepare = case
    monkeypatch.setenv("ATTNLAB_CACHE", str(world["cache"]))
    copy = tmp_path / "copy"
    source = world["clf"] if "{csv}" in argv or "classify" in " ".join(argv) else world["lm"]
    shutil.copytree(source, copy)
    for step in prepare:
        step(copy)
    before = {name: digest(world[name]) for name in ("lm", "clf")}
    copied = digest(copy)
    places = {**{k: str(v) for k, v in world.items()}, "copy": str(copy)}
    try:
        status = main([arg.format(**places) for arg in argv])
    except SystemExit as exit:  # argparse
        status = exit.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("attnlab: error:"), err
    assert message in err[0]
    assert {name: digest(world[name]) for name in ("lm", "clf")} == before
    assert digest(copy) == copied
    assert not (world["root"] / "new").exists()


def test_the_table_covers_at_least_forty_inputs():
    assert len({json.dumps(case[:2]) for case in CASES}) >= 40
