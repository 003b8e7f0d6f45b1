"""Small run folders to look at, made in the test (random weights, bytes tokenizer)."""

from __future__ import annotations

import importlib
import os
import shutil

import pytest
import torch

import attnlab
from attnlab.data.tokenizers import ByteTokenizer
from attnlab.runs import RunFolder

TEXT = "The cat sat on the mat; it looked at me — and purred."


def tiny_config(**settings) -> attnlab.ModelConfig:
    shape = {"vocab_size": 256, "context": 32, "depth": 2, "width": 24, "heads": 3}
    return attnlab.ModelConfig(**{**shape, **settings})


def make_run(path, model: torch.nn.Module, labels: list[str] | None = None) -> str:
    """A run folder holding `model` and a bytes tokenizer (and class names)."""
    model.save(path)
    folder = RunFolder(path)
    folder.save_tokenizer(ByteTokenizer())
    if labels is not None:
        folder.save_labels(labels)
    return str(path)


def require(module: str):
    """Import an optional test dependency: in CI (CI set) it must be there; elsewhere a test
    without it is skipped."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def require_chromium() -> str:
    """Debian's chromium: CI must have it (`.ci/run` installs it), so there its absence
    fails the test; elsewhere the browser tests are skipped without it."""
    if not os.path.exists(CHROMIUM):
        message = "no chromium at /usr/bin/chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM
