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
    attention.html                   `attnlab look`'s page, unless it was told another place
    bit-error.png, memory.png        an algorithmic run's pictures

Every file is written atomically (`io.atomic_write`), so an interrupted save leaves the
previous checkpoint intact. The checkpoint carries its own settings: a resume that fails
(say, with a learning rate that diverges) never changes what the next resume starts from.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import torch
from safetensors import safe_open
from torch import nn

from . import files
from .checkpoint import FORMAT_VERSION, load, read_config
from .data.tokenizers import Tokenizer, load_tokenizer
from .errors import UserError
from .io import current_umask, read_json, read_json_object, remove_temporaries, write_json
from .training.metrics_log import MetricsLog
from .training.state import read_training_state, write_training_state


class RunFolder:
    """The files of one run folder, by what they hold."""

    CONFIG = files.CONFIG
    WEIGHTS = files.WEIGHTS
    TOKENIZER = files.TOKENIZER
    TOKENIZER_SETTINGS = files.TOKENIZER_SETTINGS
    LABELS = files.LABELS
    CHECKPOINT = files.CHECKPOINT
    SETTINGS = files.SETTINGS
    RESULTS = files.RESULTS
    METRICS = files.METRICS
    TENSORBOARD = files.TENSORBOARD
    CURVES = files.CURVES
    LOCK = files.LOCK
    PAGE = files.PAGE
    BIT_ERROR_PLOT = files.BIT_ERROR_PLOT
    MEMORY_PLOT = files.MEMORY_PLOT
    # Files that make a folder a run folder.
    MARKERS = (CONFIG, TOKENIZER_SETTINGS, CHECKPOINT, SETTINGS)
    # What a run writes; `--overwrite` removes exactly these (and the folders and plots below).
    RUN_FILES = (CONFIG, WEIGHTS, TOKENIZER, TOKENIZER_SETTINGS, LABELS, CHECKPOINT, SETTINGS,
                 RESULTS, METRICS, CURVES, PAGE, BIT_ERROR_PLOT, MEMORY_PLOT)  # fmt: skip

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    @contextmanager
    def claimed(self, *, resume: bool, overwrite: bool) -> Iterator[RunFolder]:
        """Take this folder for a run while the block runs, or say why not; nothing saved is
        lost by accident.

        A new run needs an empty folder, or a run folder that holds no model yet (a start that
        died before its first checkpoint, which starts over) or `overwrite`. A folder holding
        files but no run is never emptied. The folder is locked for this process (a killed
        process's lock goes with it), and what interrupted writes left behind is removed."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: is a file, not a folder; choose another --out")
        if resume:
            self.check_resumable()
        else:
            self.check_new(overwrite)
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"{self.path}: cannot write here ({error.strerror})") from error
        handle = self.lock()
        try:
            remove_temporaries(self.path)
            if not resume:
                self.remove_run_files()
            yield self
        except BaseException:
            if created and not self.has_checkpoint():  # a start that failed leaves nothing
                shutil.rmtree(self.path, ignore_errors=True)
            raise
        finally:
            handle.close()  # unlocks

    def check_resumable(self) -> None:
        if not self.has_checkpoint():
            raise UserError(
                f"{self.path}: no {self.CHECKPOINT} to resume from; a run that stopped before "
                "its first checkpoint starts again with the same command, without --resume"
            )

    def check_new(self, overwrite: bool) -> None:
        if not self.path.is_dir():
            return
        entries = [p for p in self.path.iterdir() if p.name != self.LOCK]
        if not entries:
            return
        if not any(self.file(name).exists() for name in self.MARKERS):
            raise UserError(
                f"{self.path}: holds files but no attnlab run ({entries[0].name}, ...); "
                "choose another --out"
            )
        holds_model = self.has_checkpoint() or self.file(self.CONFIG).exists()
        if holds_model and not overwrite:
            raise UserError(
                f"{self.path}: the folder already holds a run; resume it with --resume, "
                "choose another --out, or replace it with --overwrite"
            )

    def lock(self) -> TextIO:
        """An exclusive lock on the folder, held while the returned file is open."""
        path = self.file(self.LOCK)
        try:
            handle = open(path, "a+")  # noqa: SIM115 (kept open: closing would unlock)
            os.chmod(path, 0o666 & ~current_umask())
        except OSError as error:
            raise UserError(f"{self.path}: cannot write here ({error.strerror})") from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(
                f"{self.path}: in use by another attnlab process (pid {owner}); wait for it to "
                "finish or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def remove_run_files(self) -> None:
        """Delete every file a run writes here (never anything else)."""
        for name in self.RUN_FILES:
            self.file(name).unlink(missing_ok=True)
        for plot in self.path.glob("confusion-*.png"):
            plot.unlink()
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
        return load_tokenizer(self.path)

    def save_tokenizer(self, tokenizer: Tokenizer) -> None:
        tokenizer.save(self.path)

    def labels(self, count: int | None = None) -> list[str]:
        """A classifier's class names; for a model saved without them, `count` numbers."""
        path = self.file(self.LABELS)
        if count is not None and not path.exists():
            return [str(i) for i in range(count)]
        labels = read_json(path, "class names")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise UserError(f"{path}: expected a JSON list of class names")
        if count is not None and len(labels) != count:
            raise UserError(f"{path}: {len(labels)} class names for a classifier of {count}")
        return labels

    def save_labels(self, classes: list[str]) -> None:
        write_json(self.file(self.LABELS), list(classes))

    # --- training state --------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.file(self.CHECKPOINT).is_file()

    def settings(self) -> dict[str, Any]:
        """The training settings of the latest checkpoint (`train.json`)."""
        return read_json_object(self.file(self.SETTINGS), "training settings", ("task",))

    def settings_or_none(self) -> dict[str, Any]:
        """The training settings, or none for a model saved on its own (`model.save`): then
        every setting takes its default."""
        return self.settings() if self.file(self.SETTINGS).exists() else {}

    def checkpoint_metadata(self) -> dict[str, Any]:
        """Step, time, settings and model config stored in the checkpoint itself."""
        path = self.file(self.CHECKPOINT)
        if not path.is_file():
            raise UserError(f"{path}: missing training checkpoint")
        try:
            with safe_open(str(path), "pt") as f:
                metadata = f.metadata() or {}
        except Exception as error:  # a truncated or foreign file fails anywhere inside
            raise UserError(f"{path}: unreadable training checkpoint ({error})") from error
        try:
            return json.loads(metadata["meta"])
        except (KeyError, json.JSONDecodeError) as error:
            raise UserError(f"{path}: a training checkpoint without its metadata") from error

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

    def has_results(self) -> bool:
        return self.file(self.RESULTS).is_file()

    def read_results(self) -> dict[str, Any]:
        return read_json_object(self.file(self.RESULTS), "results")
