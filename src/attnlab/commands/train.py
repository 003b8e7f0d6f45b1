"""`attnlab train TASK`: one subcommand per registered task, all with the same run folders,
presets, resume, progress, metrics and checkpoints.

Settings come from, in rising order: the dataclass defaults, the preset, the settings file
(`--config FILE`, JSON or YAML: `settings_file.py`), the flags. A resumed run takes its
settings from its checkpoint; flags may change training and data settings (a new budget, say),
never the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import ModelConfig, TrainConfig, from_settings, option
from ..device import memory_bytes, pick_device
from ..errors import UserError
from ..models.base import parameter_count
from ..registry import ATTENTION, MODELS, STACKS, TASKS
from ..runs import RunFolder
from ..settings_file import read_settings_file
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
from ..training.loop import Callback, Run, train
from .base import Command, build, given, given_variant_options, register

EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 128 + signal.SIGTERM}


@dataclass
class RunOptions:
    """Which run folder, and where its settings start from."""

    preset: str = option("", "model, training and data settings to start from")
    config: str = option("", "a JSON or YAML file of model, train and data settings, over the "
                         "preset; flags override it")  # fmt: skip
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


def refuse_ignored_flags(model_flags: dict[str, Any]) -> None:
    """A flag the chosen variant would ignore is an error, not a silent no-op."""
    stack = STACKS.lookup(model_flags.get("model", ModelConfig.model))
    if "depth" in model_flags and not getattr(stack, "uses_depth", True):
        raise UserError(
            f"--depth: --model {stack.name} has one shared block; its depth is "
            f"--{stack.name}.max-steps"
        )


def sections_of(task: type[Task]) -> dict[str, type]:
    """The dataclass of each section of a settings file for `task`."""
    return {"model": ModelConfig, "train": TrainConfig, "data": task.Data}


def resolve(task: type[Task], run: RunOptions, args: argparse.Namespace) -> Settings:
    model_flags = flags_of(ModelConfig, args)
    train_flags, data_flags = flags_of(TrainConfig, args), given(args, task.Data)
    refuse_ignored_flags(model_flags)
    if run.resume:
        if run.out and Path(run.out) != Path(run.resume):
            raise UserError(f"--resume {run.resume} continues that folder; leave out --out")
        if run.preset or run.config:
            which = "--preset" if run.preset else "--config"
            raise UserError(f"{which} starts a new run; leave it out with --resume")
        folder = RunFolder(run.resume)
        folder.check_resumable()
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
        file = read_settings_file(run.config, task.name, sections_of(task)) if run.config else {}
        given_here = {**file.get("data", {}), **file.get("model", {}), **data_flags, **model_flags}
        preset = task.presets[run.preset] if run.preset else task.defaults(given_here)
        train_settings = merge_budget(preset.get("train", {}), file.get("train", {}))
        train_settings = merge_budget(train_settings, train_flags)
        data_settings = {**preset.get("data", {}), **file.get("data", {}), **data_flags}
        model_settings = merge(ModelConfig, preset.get("model", {}), file.get("model", {}))
        model_settings = merge(ModelConfig, model_settings, model_flags)
        folder = RunFolder(run.out or Path("runs") / (run.preset or task.name))
    where = str(folder)
    return Settings(
        folder,
        from_settings(TrainConfig, train_settings, where),
        from_settings(task.Data, data_settings, where),
        from_settings(ModelConfig, model_settings, where),
    )


def check_fits(model: ModelConfig, train: TrainConfig, device: torch.device) -> None:
    """Refuse, before building anything, a model that cannot be trained in this memory: about
    16 bytes per parameter (weights, gradients, two AdamW moments) and, for the activations
    kept for the backward pass, about 64 bytes per number of width per token per block."""
    params = model.estimated_parameters()
    activations = 64 * train.batch_size * model.context * model.width * model.depth
    need, have = 16 * params + activations, memory_bytes(device)
    if need > have:
        raise UserError(
            f"the model would have about {params:.3g} parameters and need about "
            f"{need / 2**30:,.0f} GiB to train; {device} has {have / 2**30:,.0f} GiB: choose a "
            "smaller --width, --depth, --context or --batch-size"
        )


def describe(model: torch.nn.Module) -> str:
    """One line saying what was built."""
    cfg = model.cfg
    params = parameter_count(model)
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


@contextmanager
def prepared_run(
    task_cls: type[Task], args: argparse.Namespace, say: Callable[..., None] = print
) -> Iterator[tuple[Setup, Task, torch.nn.Module]]:
    """Check every setting, claim the run folder (held until the block ends), read the data
    and build (or restore) the model: everything before the first step."""
    run_options = build(RunOptions, args)
    settings = resolve(task_cls, run_options, args)
    dist = Distributed.from_environment()
    say = say if dist.main else (lambda *text, **kw: None)
    folder, tcfg = settings.folder, settings.train
    device = pick_device(tcfg.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    for kind in task_cls.model_kinds[:1]:  # the kind this task trains
        MODELS[kind].check(settings.model)
    check_fits(settings.model, tcfg, device)
    torch.manual_seed(tcfg.seed)
    setup = Setup(folder, tcfg, settings.data, settings.model, device, dist,
                  bool(run_options.resume), say)  # fmt: skip
    claim = folder.claimed(resume=setup.resuming, overwrite=run_options.overwrite)
    with claim if dist.main else nullcontext():
        task, model = task_cls.setup(setup)
        if setup.resuming:
            say(f"resumed {folder} at step {folder.checkpoint_metadata()['step']}")
        say(describe(model))
        budget = f"{tcfg.steps} steps" if tcfg.steps else f"{tcfg.minutes:g} minutes"
        processes = f"{dist.world} processes × " if dist.world > 1 else ""
        say(f"training on {device} for {budget}, batch {processes}{tcfg.batch_size}; "
            f"run folder {folder}")  # fmt: skip
        yield setup, task, model


def run_training(task_cls: type[Task], args: argparse.Namespace) -> int:
    """Train, and show what the task shows at the end."""
    started = time.perf_counter()
    with prepared_run(task_cls, args) as (setup, task, model):
        finished = fit(setup, task, model, task_cls.name)
        if finished.stop is not None:
            setup.say(f"stopped by {finished.stop} at step {finished.step}; saved. Continue "
                      f"with: attnlab train {task_cls.name} --resume {setup.folder}")  # fmt: skip
            return EXIT_STATUS.get(finished.stop, 130)
        if setup.dist.main:
            task.finish(setup, model)
    minutes = (time.perf_counter() - started) / 60  # data, training, scores, sample: all of it
    setup.say(f"done: {minutes:.1f} minutes in all")
    return 0


def fit(
    setup: Setup,
    task: Task,
    model: torch.nn.Module,
    task_name: str,
    extra: Iterable[Callback] = (),
    *,
    final: bool = True,
    progress: bool = True,
) -> Run:
    """Train with every callback: signals, progress, metrics, evaluation, checkpoints, the
    `extra` ones and (if `final`) the full scores of the held-out splits at the end."""
    folder, dist = setup.folder, setup.dist
    saved = {"task": task_name, "train": setup.train.to_dict(),
             "data": dataclasses.asdict(setup.data)}  # fmt: skip
    log = None
    if dist.main:
        resume_step = folder.checkpoint_metadata()["step"] if setup.resuming else None
        log = folder.metrics_log(task.plot, resume_step)
    bar = ProgressBar() if progress else None

    def save(run: Run, extra: dict, meta: dict) -> None:
        folder.save_checkpoint(run.model, run.optimizer, extra, meta, saved)

    def restore(run: Run) -> tuple[dict, dict]:
        return folder.load_checkpoint(run.model, run.optimizer)

    callbacks = [
        StopOnSignal(),
        *([bar] if bar else []),
        *([Metrics(log)] if log else []),
        Evaluation(setup.train.eval_every, log, bar.write if bar else setup.say),
        Checkpoints(setup.train.save_every, save, restore if setup.resuming else None),
        *extra,
        *([FinalScores(folder.save_results, log, setup.say)] if final else []),
    ]
    return train(model, task, setup.train, setup.device, callbacks, setup.dist)


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
