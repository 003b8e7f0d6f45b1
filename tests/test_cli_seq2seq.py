"""Sequence to sequence through the command line: train, resume, translate, eval, bad input."""

import json

import pytest

from attnlab.cli import main

SMALL = ["--context", "12", "--depth", "1", "--width", "32", "--heads", "2", "--batch-size", "16"]
SMALL += ["--eval-every", "2", "--save-every", "2", "--eval-sentences", "8", "--beam", "2"]
REVERSE = ["--data", "task:reverse", "--task-size", "60", "--max-length", "6"]


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_resume_translate_and_eval_a_generated_task(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    args = ["train", "seq2seq", *REVERSE, *SMALL, "--out", str(out), "--steps", "4"]
    assert main([*args, "--schedule", "noam", "--warmup", "2"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert {"valid_bleu", "valid_chrf", "test_exact_match", "test_loss"} <= set(results)
    assert "valid_bleu" in (out / "metrics.jsonl").read_text()  # logged during training
    assert main(["train", "seq2seq", "--resume", str(out), "--steps", "6"]) == 0
    assert json.loads((out / "results.json").read_text())["step"] == 6
    capsys.readouterr()

    assert main(["translate", str(out), "--text", "abc", "--json"]) == 0
    result = last_json(capsys)
    assert result["beam"] == 2 and result["translations"][0]["source"] == "abc"
    assert isinstance(result["translations"][0]["translation"], str)
    texts = tmp_path / "texts.txt"
    texts.write_text("abc\nxy\n")
    assert main(["translate", str(out), "--file", str(texts), "--beam", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2

    assert main(["eval", str(out), "--json", "--beam", "1"]) == 0
    report = last_json(capsys)
    assert report["beam"] == 1 and report["sources"] == 6 and report["split"] == "test"
    assert 0 <= report["bleu"] <= 100 and 0 <= report["exact_match"] <= 1
    assert report["loss"] > 0 and 0 <= report["accuracy"] <= 1


def test_a_pairs_file_with_several_references_is_scored_once_per_source(tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"s{i}\tt{i}\n" for i in range(12)))
    test = tmp_path / "test.tsv"
    test.write_text("source\ttarget\nja\tyes\nja\tyeah\nnein\tno\n")
    out = tmp_path / "run"
    args = ["train", "seq2seq", "--data", str(train), "--test", str(test), "--out", str(out)]
    assert main([*args, *SMALL, "--steps", "2", "--tokenizer", "bytes"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--data", str(test), "--json"]) == 0
    assert last_json(capsys)["sources"] == 2


@pytest.mark.parametrize(
    "text, extra, message",
    [
        ("only one column\n", [], "line 1: one column"),
        ("a\tb\nc\t\n", [], "line 2: empty or missing target"),
        ("short\tok\n" + "x" * 20 + "\tlong\n", [], "line 2: the source is 20 tokens long"),
        ("a\tb\n", ["--data", "task:shout"], "--data task:shout: no such task"),
    ],
)  # fmt: skip
def test_bad_training_input_is_one_clear_error(tmp_path, capsys, text, extra, message):
    data = tmp_path / "pairs.tsv"
    data.write_text(text * 3 if "one column" not in text else text)
    args = ["train", "seq2seq", "--data", str(data), "--out", str(tmp_path / "run"), *SMALL]
    assert main([*args, "--steps", "1", *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_translating_a_text_longer_than_the_context_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "seq2seq", *REVERSE, *SMALL, "--out", str(out), "--steps", "1"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["translate", str(out), "--text", "x" * 30]) == 2
    assert "the source is 30 tokens long" in capsys.readouterr().err
    assert main(["translate", str(out)]) == 2
    assert "exactly one of --text" in capsys.readouterr().err
