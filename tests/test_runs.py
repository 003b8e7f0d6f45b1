"""Run folders under stress: a second process, SIGTERM, a start that died, a failed resume,
--overwrite, a full disk, permissions, leftovers of interrupted writes; and bits per byte of
bytes that are not text."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np

import attnlab
from attnlab import LanguageModel, ModelConfig
from attnlab.cli import main
from attnlab.data.tokenizers import train_tokenizer
from attnlab.runs import RunFolder
from attnlab.training import state

SMALL = ["--context", "16", "--depth", "1", "--width", "32", "--heads", "2", "--batch-size", "4"]
SMALL += ["--eval-bytes", "200", "--sample-tokens", "4", "--eval-every", "1000"]


def train(text, out, *extra):
    return main(["train", "lm", "--data", str(text), "--out", str(out), *SMALL, *extra])


def checkpoint_step(folder):
    return RunFolder(folder).checkpoint_metadata()["step"]


def test_a_second_process_is_refused_and_sigterm_saves(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "attnlab", "train", "lm", "--data", str(text_file), "--out",
               str(out), *SMALL, "--steps", "100000", "--save-every", "100000"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.safetensors").exists():  # the step-0 checkpoint
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.2)
        assert train(text_file, out, "--steps", "5", "--overwrite") == 2
        assert "in use by another attnlab process" in capsys.readouterr().err
        assert main(["train", "lm", "--resume", str(out), "--steps", "9"]) == 2
        assert "in use by another attnlab process" in capsys.readouterr().err
        time.sleep(1.0)
        first.send_signal(signal.SIGTERM)
        stdout, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 128 + signal.SIGTERM
    said = stdout.decode()
    assert "stopped by SIGTERM" in said and f"--resume {out}" in said
    step = checkpoint_step(out)
    assert f"at step {step}; saved" in said and step > 0
    assert main(["train", "lm", "--resume", str(out), "--steps", str(step + 2)]) == 0
    assert checkpoint_step(out) == step + 2


def test_a_start_that_died_before_its_first_checkpoint_starts_over(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    train_tokenizer("bytes", []).save(out)  # what a start killed early leaves behind
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 5.0}\n{"step": 2, "lo')
    assert main(["train", "lm", "--resume", str(out), "--steps", "3"]) == 2
    assert "starts again with the same command, without --resume" in capsys.readouterr().err
    assert train(text_file, out, "--steps", "3") == 0
    assert checkpoint_step(out) == 3


def test_a_failed_resume_changes_neither_settings_nor_checkpoint(text_file, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert train(text_file, out, "--steps", "2", "--lr", "0.001") == 0
    files = (out / "train.json", out / "checkpoint.safetensors")
    saved = [path.read_bytes() for path in files]
    original = LanguageModel.loss

    def diverging(self, *args, **kwargs):
        loss, stats = original(self, *args, **kwargs)
        return loss * float("inf"), stats

    monkeypatch.setattr(LanguageModel, "loss", diverging)
    assert main(["train", "lm", "--resume", str(out), "--steps", "4", "--lr", "1e6"]) == 2
    assert [path.read_bytes() for path in files] == saved
    monkeypatch.setattr(LanguageModel, "loss", original)
    assert main(["train", "lm", "--resume", str(out), "--steps", "4"]) == 0
    assert json.loads((out / "train.json").read_text())["train"]["lr"] == 0.001


def test_overwrite_replaces_only_what_a_run_wrote(text_file, tmp_path):
    out = tmp_path / "run"
    assert train(text_file, out, "--steps", "2") == 0
    (out / "notes.txt").write_text("mine")
    (out / "confusion-test.png").write_bytes(b"stale")
    (out / "tensorboard" / "stale-events").write_text("x")
    (out / ".checkpoint.safetensors.x1y2.tmp").write_bytes(b"half a write")
    assert train(text_file, out, "--steps", "1", "--overwrite") == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "confusion-test.png").exists()
    assert not (out / "tensorboard" / "stale-events").exists()
    assert not list(out.glob(".*.tmp"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(row["step"] for row in rows) == 1


def test_a_full_disk_keeps_the_last_checkpoint(text_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert train(text_file, out, "--steps", "2") == 0
    good = (out / "checkpoint.safetensors").read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(state, "save_file", no_space)
    assert main(["train", "lm", "--resume", str(out), "--steps", "4"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (out / "checkpoint.safetensors").read_bytes() == good
    assert not list(out.glob(".*.tmp"))


def test_files_follow_the_umask(text_file, tmp_path):
    previous = os.umask(0o022)
    try:
        assert train(text_file, tmp_path / "run", "--steps", "1") == 0
    finally:
        os.umask(previous)
    for name in ("config.json", "model.safetensors", "checkpoint.safetensors", "train.json",
                 "tokenizer_attnlab.json"):  # fmt: skip
        mode = stat.S_IMODE((tmp_path / "run" / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))


def test_a_resume_takes_a_new_budget_of_either_kind(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(text_file, out, "--steps", "2") == 0
    spent = RunFolder(out).checkpoint_metadata()["seconds"]
    capsys.readouterr()
    assert main(["train", "lm", "--resume", str(out), "--minutes", "0.1"]) == 0
    assert "for 0.1 minutes" in capsys.readouterr().out
    assert checkpoint_step(out) > 2 or spent >= 6  # the minutes count the whole run


def test_bpe_bits_per_byte_of_random_bytes_are_those_of_the_bytes(tmp_path, monkeypatch):
    """Nothing can compress random bytes: a model's honest score is about 8 bits per byte."""
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    out = tmp_path / "run"
    flags = ["--tokenizer", "bpe", "--vocab-size", "320", "--steps", "20", "--lr", "3e-3"]
    assert main(["train", "lm", "--data", str(noise), "--out", str(out), *SMALL, *flags]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["test_bytes"] >= 14_900  # the whole test split, every byte but the first
    assert results["test_bpb"] >= 7.9


def test_a_model_saved_with_its_tokenizer_works_with_generate_and_eval(text_file, tmp_path, capsys):
    lm = LanguageModel(ModelConfig(vocab_size=256, context=16, depth=1, width=32, heads=2))
    lm.save(tmp_path / "saved", tokenizer=train_tokenizer("bytes", []))
    assert main(["generate", str(tmp_path / "saved"), "--prompt", "x", "--tokens", "5"]) == 0
    assert main(["eval", str(tmp_path / "saved"), "--data", str(text_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["data"] == str(text_file) and result["bits_per_byte"] > 0
    assert isinstance(attnlab.load(tmp_path / "saved"), LanguageModel)
