"""What every task shares, and what the `train` and `eval` commands hand to a task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import ModelConfig, NoOptions, TrainConfig, device_option, option
from ..errors import UserError
from ..registry import TASKS
from ..runs import RunFolder
from ..training.distributed import Distributed


@dataclass
class Setup:
    """A training run as the `train` command prepared it: settings checked, folder ready.

    `model` holds the model settings (on a resume, those of the checkpoint); its vocab_size
    is a placeholder until the task knows its tokenizer.
    """

    folder: RunFolder
    train: TrainConfig
    data: Any  # the task's own settings (`Task.Data`)
    model: ModelConfig
    device: torch.device
    dist: Distributed
    resuming: bool
    say: Callable[..., None]


@dataclass
class EvalConfig:
    """`attnlab eval RUN`: what every task's evaluation takes."""

    run: str = option("", "run folder", positional=True)
    data: str = option("", "data to score (default: the run's own)")
    split: str = option("test", "which split to score", choices=("valid", "test", "all"))
    batch_size: int = option(32, "sequences per batch", at_least=1)
    device: str = device_option()
    json: bool = option(False, "print one JSON object on the last line")


class Task:
    """Base of the registered tasks (`@TASKS.register(name)`).

    Class attributes: `Data`, the dataclass of its data settings (flags of `train NAME`);
    `Eval`, extra flags of `attnlab eval` for its models; `presets` (name -> {"model",
    "train", "data"} settings); `model_kinds`, the saved model kinds it evaluates.
    An instance is what the training loop trains (`training.loop.Task`).
    """

    name: ClassVar[str]
    Data: ClassVar[type]
    Eval: ClassVar[type] = NoOptions
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    model_kinds: ClassVar[tuple[str, ...]] = ()
    plot: ClassVar[dict[str, str]] = {}
    held_out: tuple[str, ...] = ("valid", "test")

    @classmethod
    def defaults(cls, flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """What a new run without --preset starts from, as a preset ({"model", "train",
        "data"} settings), chosen by the flags given (say, a size per --model)."""
        return {}

    @classmethod
    def setup(cls, setup: Setup) -> tuple[Task, nn.Module]:
        """Read the data, make or load the tokenizer, build the model on the device."""
        raise NotImplementedError

    def finish(self, setup: Setup, model: nn.Module) -> None:
        """Anything to show once training is done (a language model prints a sample)."""

    @classmethod
    def evaluate_folder(
        cls, folder: RunFolder, model: nn.Module, cfg: EvalConfig, options: Any
    ) -> dict[str, Any]:
        """`attnlab eval`: score a saved model (on `model.device`) with the common settings
        `cfg` and the task's own `options` (`Eval`); print a summary, return the result."""
        raise NotImplementedError


def task_for_model(kind: str, where: str) -> type[Task]:
    """The task that trains (and evaluates) models of this kind."""
    for task in TASKS.values():
        if kind in task.model_kinds:
            return task
    raise UserError(f"{where}: no task evaluates a model of kind {kind!r}")
