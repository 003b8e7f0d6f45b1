"""The command line end to end on a small text: train, resume, generate, eval, bad input."""

import json
import subprocess
import sys

import pytest

from attnlab.cli import main

TINY = ["--context", "16", "--depth", "1", "--width", "32", "--heads", "2", "--batch-size", "4"]
TINY += ["--eval-every", "2", "--save-every", "2", "--sample-tokens", "8", "--eval-bytes", "300"]


def train(text_file, out, *extra):
    return main(["train", "lm", "--data", str(text_file), "--out", str(out), *TINY, *extra])


def test_train_resume_generate_and_eval(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(text_file, out, "--steps", "4") == 0
    printed = capsys.readouterr().out
    assert "test_bpb" in printed and "--- sample" in printed
    assert main(["train", "lm", "--resume", str(out), "--steps", "6"]) == 0
    assert "resumed" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["step"] == 6

    assert main(["generate", str(out), "--prompt", "for", "--tokens", "12", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("for")

    assert main(["eval", str(out), "--split", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bytes"] == text_file.stat().st_size - 1
    assert 0 < result["bits_per_byte"] < 8


def test_bpe_run_reports_bits_per_byte_of_the_text(text_file, tmp_path, capsys):
    out = tmp_path / "bpe"
    args = ["--tokenizer", "bpe", "--vocab-size", "300", "--steps", "2"]
    assert train(text_file, out, *args) == 0
    assert main(["eval", str(out), "--split", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tokens"] < result["bytes"] <= text_file.stat().st_size


def error_of(capsys, code):
    assert code == 2
    return capsys.readouterr().err


def test_bad_input_gives_one_clear_line_and_exit_code_2(text_file, tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert str(missing) in error_of(capsys, train(missing, tmp_path / "a", "--steps", "1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "empty" in error_of(capsys, train(empty, tmp_path / "b", "--steps", "1"))
    short = tmp_path / "short.txt"
    short.write_text("x" * 200)
    message = error_of(capsys, train(short, tmp_path / "c", "--steps", "1"))
    assert "fewer than one context window" in message
    assert "no such run folder" in error_of(capsys, main(["eval", str(tmp_path / "nowhere")]))


def test_unknown_preset_or_option_is_refused(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "lm", "--preset", "huge"])
    assert exit.value.code == 2 and "huge" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "lm", "--attention", "magic"])


def test_existing_run_is_kept_unless_resumed_or_overwritten(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(text_file, out, "--steps", "2") == 0
    weights = (out / "model.safetensors").read_bytes()
    assert "already holds a run" in error_of(capsys, train(text_file, out, "--steps", "2"))
    assert (out / "model.safetensors").read_bytes() == weights
    assert train(text_file, out, "--steps", "2", "--overwrite") == 0


def test_run_folder_of_a_newer_format_is_refused(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(text_file, out, "--steps", "2") == 0
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    assert "newer attnlab" in error_of(capsys, main(["generate", str(out)]))


def test_unwritable_output_folder_is_reported(text_file, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert "cannot write" in error_of(capsys, train(text_file, blocker / "run", "--steps", "1"))
    assert blocker.read_text() == "not a folder"


def test_python_dash_m_is_the_same_program():
    result = subprocess.run(
        [sys.executable, "-m", "attnlab", "train", "lm", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--attention" in result.stdout and "--preset" in result.stdout
