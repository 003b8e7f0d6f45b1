"""A run folder: everything needed to resume, evaluate, sample or share a training run, and
the one place that knows its files.

    config.json, model.safetensors   the latest model: what `attnlab.load` reads
    tokenizer.json                   how text becomes tokens
    labels.json                      a classifier's class names, in output order
    checkpoint.safetensors           model, optimiser, data-order and random-number states,
                                     the step and elapsed time, the training settings and the
                                     model's shape: one file, so it is always whole
    train.json                       the training settings of that checkpoint, to read
    results.json                     the final scores of the held-out splits
    metrics.jsonl, tensorboard/, curves.png, *.png
    bit-error.png, memory.png        an algorithmic run's pictures

Every file is written atomically (`io.atomic_write`), so an interrupted save leaves the
previous checkpoint intact. The checkpoint carries its own settings: a resume that fails
(say, with a learning rate that diverges) never changes what the next resume starts from.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from .checkpoint import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, load, read_config
from .data.tokenizers import Tokenizer, load_tokenizer
from .errors import UserError
from .io import read_json, read_json_object, write_json
from .training.metrics_log import MetricsLog
from .training.state import read_training_state, write_training_state


class RunFolder:
    """The files of one run folder, by what they hold."""

    CONFIG = CONFIG_FILE
    WEIGHTS = WEIGHTS_FILE
    TOKENIZER = "tokenizer.json"
    LABELS = "labels.json"
    CHECKPOINT = "checkpoint.safetensors"
    SETTINGS = "train.json"
    RESULTS = "results.json"
    METRICS = "metrics.jsonl"
    TENSORBOARD = "tensorboard"
    CURVES = "curves.png"
    BIT_ERROR_PLOT = "bit-error.png"  # an algorithmic run's bit error against length
    MEMORY_PLOT = "memory.png"  # its memory weightings over one example
    # What a run writes; `--overwrite` removes exactly these.
    RUN_FILES = (CONFIG, WEIGHTS, TOKENIZER, LABELS, CHECKPOINT, SETTINGS, RESULTS, METRICS,
                 CURVES, BIT_ERROR_PLOT, MEMORY_PLOT)  # fmt: skip

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    def prepare(self, *, resume: bool, overwrite: bool) -> None:
        """Check that this folder may receive the run; never touch another run by accident."""
        if resume:
            if not self.has_checkpoint():
                raise UserError(f"{self.path}: no {self.CHECKPOINT} to resume from")
            return
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: is a file, not a folder; choose another --out")
        if self.path.exists() and any(self.path.iterdir()) and not overwrite:
            raise UserError(
                f"{self.path}: the folder already holds a run; resume it with --resume, "
                "choose another --out, or replace it with --overwrite"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.file(".write-test")
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise UserError(f"{self.path}: cannot write here ({error.strerror})") from error
        if overwrite:
            for name in self.RUN_FILES:
                self.file(name).unlink(missing_ok=True)
            shutil.rmtree(self.file(self.TENSORBOARD), ignore_errors=True)

    # --- the shareable model -------------------------------------------------------------
    def model_config(self) -> dict[str, Any]:
        return read_config(self.path)

    def load_model(
        self, device: str | torch.device | None = None, expect: type | None = None
    ) -> nn.Module:
        """The saved model, in eval mode; `expect`: the model class a command needs."""
        model = load(self.path, device)
        if expect is not None and not isinstance(model, expect):
            raise UserError(f"{self.path}: holds a {model.title}, not a {expect.title}")
        return model

    # --- what turns data into model inputs ---------------------------------------------
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.file(self.TOKENIZER))

    def save_tokenizer(self, tokenizer: Tokenizer) -> None:
        tokenizer.save(self.file(self.TOKENIZER))

    def labels(self) -> list[str]:
        path = self.file(self.LABELS)
        labels = read_json(path, "class names")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise UserError(f"{path}: expected a JSON list of class names")
        return labels

    def save_labels(self, classes: list[str]) -> None:
        write_json(self.file(self.LABELS), list(classes))

    # --- training state --------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.file(self.CHECKPOINT).is_file()

    def settings(self) -> dict[str, Any]:
        """The training settings of the latest checkpoint (`train.json`)."""
        return read_json_object(self.file(self.SETTINGS), "training settings", ("task",))

    def checkpoint_metadata(self) -> dict[str, Any]:
        """Step, time, settings and model config stored in the checkpoint itself."""
        path = self.file(self.CHECKPOINT)
        if not path.is_file():
            raise UserError(f"{path}: missing training checkpoint")
        try:
            with safe_open(str(path), "pt") as f:
                return json.loads(f.metadata()["meta"])
        except Exception as error:  # a truncated or foreign file fails anywhere inside
            raise UserError(f"{path}: unreadable training checkpoint ({error})") from error

    def save_checkpoint(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        extra: dict[str, torch.Tensor],
        meta: dict[str, Any],
        settings: dict[str, Any],
    ) -> None:
        """The resumable state with its settings in one file; then the shareable model and
        a readable copy of the settings beside it."""
        settings = {"format_version": FORMAT_VERSION, **settings}
        model_config = {"format_version": FORMAT_VERSION, "kind": model.kind,
                        **model.config_dict()}  # fmt: skip
        meta = {**meta, "settings": settings, "model": model_config}
        write_training_state(self.file(self.CHECKPOINT), model, optimizer, extra, meta)
        model.save(self.path)
        write_json(self.file(self.SETTINGS), settings)

    def load_checkpoint(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return read_training_state(self.file(self.CHECKPOINT), model, optimizer)

    # --- what a run reports ------------------------------------------------------------------
    def metrics_log(self, plot: dict[str, str], resume_step: int | None = None) -> MetricsLog:
        return MetricsLog(
            self.file(self.METRICS),
            self.file(self.TENSORBOARD),
            self.file(self.CURVES),
            plot,
            resume_step,
        )

    def save_results(self, results: dict[str, Any]) -> None:
        write_json(self.file(self.RESULTS), results)
