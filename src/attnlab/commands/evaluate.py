"""`attnlab eval RUN`: score a saved model on held-out data, by its task: bits per byte for a
language model, accuracy, macro-F1 and the confusion matrix for a classifier."""

from __future__ import annotations

import argparse

from ..config import from_settings
from ..device import pick_device
from ..errors import UserError
from ..registry import TASKS
from ..runs import RunFolder
from ..tasks.base import EvalConfig, task_for_model
from .base import Command, add_flags, build, given, print_json, register


def evaluate(args: argparse.Namespace) -> int:
    cfg = build(EvalConfig, args)
    folder = RunFolder(cfg.run)
    task = task_for_model(folder.model_config()["kind"], str(folder))
    for other in TASKS.values():
        if other is not task:
            for name in given(args, other.Eval):
                raise UserError(f"--{name.replace('_', '-')} applies to {other.name} runs; "
                                f"{folder} holds a {task.name} run")  # fmt: skip
    options = from_settings(task.Eval, given(args, task.Eval), "eval options")
    model = folder.load_model(pick_device(cfg.device))
    result = task.evaluate_folder(folder, model, cfg, options)
    if cfg.json:
        print_json(result)
    return 0


def add_task_flags(parser: argparse.ArgumentParser) -> None:
    for task in TASKS.values():
        add_flags(parser, task.Eval, f"{task.name} runs")


register(Command(("eval",), "score a trained model on held-out data",
                 (("evaluation", EvalConfig),), evaluate, extra_flags=add_task_flags))  # fmt: skip
