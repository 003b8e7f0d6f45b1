"""Text classification through the command line: train, resume, eval, predict, bad input."""

import csv
import json

import pytest

from attnlab.cli import main

SMALL = ["--context", "24", "--depth", "1", "--width", "32", "--heads", "2", "--batch-size", "8"]
SMALL += ["--eval-every", "3", "--save-every", "3"]


def write_csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def reviews(tmp_path):
    good = ["a fine film", "great fun", "loved it", "superb acting", "a joy"]
    bad = ["dull and slow", "awful plot", "hated it", "a mess", "boring"]
    rows = [(t, "pos") for t in good * 4] + [(t, "neg") for t in bad * 4]
    return write_csv(tmp_path / "train.csv", rows), write_csv(tmp_path / "test.csv", rows[::3])


def train(train_file, out, *extra):
    return main(["train", "classify", "--data", str(train_file), "--out", str(out), *SMALL, *extra])


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_resume_eval_and_predict(reviews, tmp_path, capsys):
    train_file, test_file = reviews
    out = tmp_path / "run"
    assert train(train_file, out, "--test", str(test_file), "--steps", "4") == 0
    assert "test_accuracy" in capsys.readouterr().out
    assert json.loads((out / "labels.json").read_text()) == ["neg", "pos"]
    assert main(["train", "classify", "--resume", str(out), "--steps", "6"]) == 0
    assert json.loads((out / "results.json").read_text())["step"] == 6
    capsys.readouterr()

    assert main(["eval", str(out), "--data", str(test_file), "--json"]) == 0
    report = last_json(capsys)
    assert 0 <= report["accuracy"] <= 1 and "macro_f1" in report
    assert sum(map(sum, report["confusion"])) == 14  # every test row, once
    assert (out / "confusion-test.png").is_file()

    assert main(["predict", str(out), "--text", "great fun", "--json"]) == 0
    prediction = last_json(capsys)["predictions"][0]
    assert prediction["label"] in ("neg", "pos")
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    lines = tmp_path / "texts.txt"
    lines.write_text("loved it\nawful plot\n")
    assert main(["predict", str(out), "--file", str(lines), "--json"]) == 0
    assert len(last_json(capsys)["predictions"]) == 2


def error_of(capsys, code):
    assert code == 2
    return capsys.readouterr().err


def test_missing_column_lists_the_columns_found(tmp_path, capsys):
    path = write_csv(tmp_path / "t.csv", [("x", "y")] * 10, header=("body_text", "klass"))
    message = error_of(capsys, train(path, tmp_path / "run", "--steps", "1"))
    assert "body_text" in message and "klass" in message


def test_single_class_is_refused(tmp_path, capsys):
    path = write_csv(tmp_path / "t.csv", [("some text", "a")] * 10)
    assert "class" in error_of(capsys, train(path, tmp_path / "run", "--steps", "1"))


def test_label_unseen_in_training_is_reported(reviews, tmp_path, capsys):
    train_file, _ = reviews
    odd = write_csv(tmp_path / "odd.csv", [("meh", "neutral")])
    message = error_of(
        capsys, train(train_file, tmp_path / "run", "--test", str(odd), "--steps", "1")
    )
    assert "neutral" in message and "never seen" in message


def test_empty_file_is_refused_and_nothing_is_written(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert str(path) in error_of(capsys, train(path, tmp_path / "run", "--steps", "1"))
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_listops_files_are_written_with_a_header(tmp_path, capsys):
    assert (
        main(["data", "listops", "--out", str(tmp_path), "--size", "200", "--max-length", "60"])
        == 0
    )
    header, first = (tmp_path / "train.tsv").read_text().splitlines()[:2]
    assert header == "text\tlabel" and first.startswith("[")
