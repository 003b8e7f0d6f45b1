"""`attnlab train TASK`: one subcommand per registered task, all with the same run folders,
presets, resume, progress, metrics and checkpoints.

Settings come from, in rising order: the dataclass defaults, the preset, the flags. A resumed
run takes its settings from its checkpoint; flags may change training and data settings (a new
budget, say), never the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import ModelConfig, TrainConfig, from_settings, option
from ..device import pick_device
from ..errors import UserError
from ..registry import ATTENTION, STACKS, TASKS
from ..runs import RunFolder
from ..tasks.base import Setup, Task
from ..training.callbacks import (
    Checkpoints,
    Evaluation,
    FinalScores,
    Metrics,
    ProgressBar,
    StopOnSignal,
)
from ..training.distributed import Distributed
from ..training.loop import Run, train
from .base import Command, build, given, given_variant_options, register

EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 128 + signal.SIGTERM}


@dataclass
class RunOptions:
    """Which run folder, and where its settings start from."""

    preset: str = option("", "model, training and data settings to start from")
    out: str = option("", "run folder (default: runs/<preset or task>)")
    resume: str = option("", "continue the run in this folder where it stopped")
    overwrite: bool = option(False, "replace the run already in --out")


@dataclass
class Settings:
    """Every setting of a run, checked, before any data is read."""

    folder: RunFolder
    train: TrainConfig
    data: Any
    model: ModelConfig

    def saved(self, task: str) -> dict[str, Any]:
        """What a checkpoint stores beside the model's own config."""
        return {"task": task, "train": self.train.to_dict(),
                "data": dataclasses.asdict(self.data)}  # fmt: skip


def flags_of(config: type, args: argparse.Namespace) -> dict[str, Any]:
    """A config's settings given as flags, its variants' options under "options"."""
    flags = given(args, config)
    options = given_variant_options(args, config)
    if options:
        flags["options"] = options
    return flags


def merge(config: type, settings: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Flags over settings (a preset's or a saved run's). Options merge per variant, and only
    the chosen variants' options are kept, so a flag may switch, say, the schedule."""
    merged = {**settings, **flags}
    options: dict[str, dict[str, Any]] = {}
    for source in (settings.get("options", {}), flags.get("options", {})):
        for name, values in source.items():
            options[name] = {**options.get(name, {}), **values}
    chosen = {merged.get(s, getattr(config, s, None)) for s in getattr(config, "VARIANTS", {})}
    kept = {k: v for k, v in options.items() if k in chosen or k in flags.get("options", {})}
    if kept or "options" in merged:
        merged["options"] = kept
    return merged


def merge_budget(settings: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Training flags over settings; a budget given in one unit replaces the other unit's."""
    merged = merge(TrainConfig, settings, flags)
    if "steps" in flags and "minutes" not in flags:
        merged["minutes"] = 0.0
    if "minutes" in flags and "steps" not in flags:
        merged["steps"] = 0
    return merged


def resolve(task: type[Task], run: RunOptions, args: argparse.Namespace) -> Settings:
    model_flags = flags_of(ModelConfig, args)
    train_flags, data_flags = flags_of(TrainConfig, args), given(args, task.Data)
    if run.resume:
        if run.out and Path(run.out) != Path(run.resume):
            raise UserError(f"--resume {run.resume} continues that folder; leave out --out")
        if run.preset:
            raise UserError("--preset starts a new run; leave it out with --resume")
        folder = RunFolder(run.resume)
        folder.prepare(resume=True, overwrite=False)
        if model_flags:
            names = ", ".join(f"--{k.replace('_', '-')}" for k in model_flags)
            raise UserError(f"{folder}: the model of a run being resumed cannot change ({names})")
        meta = folder.checkpoint_metadata()
        saved = meta.get("settings", {})
        if saved.get("task") != task.name:
            raise UserError(f"{folder}: holds a {saved.get('task')} run, not {task.name}")
        train_settings = merge_budget(saved.get("train", {}), train_flags)
        data_settings = {**saved.get("data", {}), **data_flags}
        model_settings = meta.get("model", {}).get("model", {})
    else:
        if run.preset and run.preset not in task.presets:
            raise UserError(f"--preset {run.preset!r}: {task.name} presets are "
                            f"{', '.join(task.presets)}")  # fmt: skip
        preset = (
            task.presets[run.preset] if run.preset else task.defaults({**data_flags, **model_flags})
        )
        train_settings = merge_budget(preset.get("train", {}), train_flags)
        data_settings = {**preset.get("data", {}), **data_flags}
        model_settings = merge(ModelConfig, preset.get("model", {}), model_flags)
        folder = RunFolder(run.out or Path("runs") / (run.preset or task.name))
    where = str(folder)
    return Settings(
        folder,
        from_settings(TrainConfig, train_settings, where),
        from_settings(task.Data, data_settings, where),
        from_settings(ModelConfig, model_settings, where),
    )


def describe(model: torch.nn.Module) -> str:
    """One line saying what was built."""
    cfg = model.cfg
    params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    stack = STACKS[cfg.model]
    if getattr(stack, "recurrent", False):  # no attention, heads, context or positions
        return (
            f"model: {cfg.model}, {stack.describe(cfg)}, width {cfg.width}, "
            f"{params / 1e6:.2f}M parameters"
        )
    core = ATTENTION[cfg.attention]
    heads = "" if core.parameter_free else f"{cfg.heads} heads, "
    return (
        f"model: {cfg.model}, {STACKS[cfg.model].describe(cfg)}, width {cfg.width}, {heads}"
        f"context {cfg.context}, {cfg.attention} attention, {cfg.position} positions, "
        f"{params / 1e6:.2f}M parameters"
    )


def run_training(task_cls: type[Task], args: argparse.Namespace) -> int:
    run_options = build(RunOptions, args)
    settings = resolve(task_cls, run_options, args)
    dist = Distributed.from_environment()
    say = print if dist.main else (lambda *text, **kw: None)
    folder, tcfg = settings.folder, settings.train
    if dist.main and not run_options.resume:
        folder.prepare(resume=False, overwrite=run_options.overwrite)
    device = pick_device(tcfg.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(tcfg.seed)
    setup = Setup(folder, tcfg, settings.data, settings.model, device, dist,
                  bool(run_options.resume), say)  # fmt: skip
    task, model = task_cls.setup(setup)
    if run_options.resume:
        say(f"resumed {folder} at step {folder.checkpoint_metadata()['step']}")
    say(describe(model))
    budget = f"{tcfg.steps} steps" if tcfg.steps else f"{tcfg.minutes:g} minutes"
    processes = f"{dist.world} processes × " if dist.world > 1 else ""
    say(f"training on {device} for {budget}, batch {processes}{tcfg.batch_size}; "
        f"run folder {folder}")  # fmt: skip
    finished = fit(setup, task, model, settings.saved(task_cls.name))
    if finished.stop is not None:
        say(f"stopped by {finished.stop} at step {finished.step}; saved. Continue with: "
            f"attnlab train {task_cls.name} --resume {folder}")  # fmt: skip
        return EXIT_STATUS.get(finished.stop, 130)
    if dist.main:
        task.finish(setup, model)
    return 0


def fit(setup: Setup, task: Task, model: torch.nn.Module, saved: dict[str, Any]) -> Run:
    """Train with every callback: signals, progress, metrics, evaluation, checkpoints and the
    final scores of the held-out splits."""
    folder, dist = setup.folder, setup.dist
    log = None
    if dist.main:
        resume_step = folder.checkpoint_metadata()["step"] if setup.resuming else None
        log = folder.metrics_log(task.plot, resume_step)
    progress = ProgressBar()

    def save(run: Run, extra: dict, meta: dict) -> None:
        folder.save_checkpoint(run.model, run.optimizer, extra, meta, saved)

    def restore(run: Run) -> tuple[dict, dict]:
        return folder.load_checkpoint(run.model, run.optimizer)

    callbacks = [
        StopOnSignal(),
        progress,
        *([Metrics(log)] if log else []),
        Evaluation(setup.train.eval_every, log, progress.write),
        Checkpoints(setup.train.save_every, save, restore if setup.resuming else None),
        FinalScores(folder.save_results, log, setup.say),
    ]
    return train(model, task, setup.train, setup.device, callbacks, dist)


def train_command(task: type[Task]) -> Command:
    return Command(
        words=("train", task.name),
        help=f"train: {(task.__doc__ or task.name).splitlines()[0]}",
        configs=(
            ("run", RunOptions),
            ("training", TrainConfig),
            ("data", task.Data),
            ("model", ModelConfig),
        ),  # fmt: skip
        run=lambda args: run_training(task, args),
        variant_options=(TrainConfig, ModelConfig),
        choices={"preset": sorted(task.presets)},
        skip={"model": ("vocab_size",)},  # the tokenizer's, set with the data settings
    )


for _task in TASKS.values():
    register(train_command(_task))
