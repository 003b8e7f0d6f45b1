"""`attnlab compare`: train every combination of the settings given with `--vary`, over
`--seeds` seeds, under one budget, and tabulate the results.

    attnlab compare --vary attention=dense,sparse,linear --seeds 2 --minutes 5 --preset tiny

Each run is a plain `attnlab train TASK` in a process of its own, one after another: the same
data, batch order (by seed), budget and thread count for every variant, a clean process for
each (so its peak memory is its own), and a real run folder under `--out` that `eval`,
`generate` and `look` open like any other. A variant differs from the others only in what
`--vary` sets.

The comparison folder holds `compare.json` (the plan and what each process measured), one run
folder per variant and seed, their logs, `compare.md` (the table) and `compare.png` (the
validation curves against steps and against seconds). Running the same command again continues
where it stopped: finished runs are kept, interrupted ones resumed from their checkpoints.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..comparison import RunSummary, markdown_table, plot_curves, summarize_run, summary_rows
from ..config import option
from ..errors import UserError
from ..io import read_json_object, write_json, write_text
from ..registry import COMMANDS, TASKS
from ..runs import RunFolder
from .base import Command, build, command_parser, print_json, register
from .run_flags import as_flags, base_flags, parse_assignment, slug, variant_settings
from .train import RunOptions, resolve

PLAN_FILE, TABLE_FILE, PLOT_FILE, SUMMARY_FILE = (
    "compare.json", "compare.md", "compare.png", "results.json",
)  # fmt: skip
# A run stopped by a signal: saved (130, 143) or killed before it had anything to save.
INTERRUPTED = (130, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM)


@dataclass
class CompareOptions:
    """What to compare, on what, for how long."""

    vary: tuple = option(
        None,
        "SETTING=A,B,...: the values to compare of any setting of `attnlab train TASK` (attention, "
        "position, lr, nystrom.landmarks, ...; also preset and config); several --vary: every "
        "combination",
        kind=str,
        many=True,
    )
    variants: tuple = option(
        None,
        "whole variants, each 'SETTING=VALUE SETTING=VALUE ...' (e.g. 'model=xl xl.memory=128'), "
        "for variants that differ in more than one setting; combined with every --vary",
        kind=str,
        many=True,
    )
    set: tuple = option(None, "SETTING=VALUE: a setting shared by every run", kind=str, many=True)
    task: str = option("lm", "what to train", choices=TASKS)
    data: str = option("", "the data of every run (the task's --data)")
    preset: str = option("", "settings every run starts from (a preset of the task)")
    config: str = option("", "a settings file (JSON or YAML) every run starts from")
    steps: int = option(0, "optimiser steps of every run", at_least=0)
    minutes: float = option(0.0, "training minutes of every run", at_least=0)
    seeds: int = option(1, "seeds per variant: 0, 1, ..., K-1", at_least=1)
    out: str = option("runs/compare", "folder for the runs, the table and the plot")
    json: bool = option(False, "print one JSON object on the last line")


@dataclass
class Planned:
    """One run of the comparison."""

    variant: str  # "attention=sparse, lr=0.002"
    seed: int
    folder: Path
    argv: list[str]  # the flags of `attnlab train TASK` that start it


def plan(cfg: CompareOptions) -> list[Planned]:
    """Every run, seed-major: all variants of seed 0 first, so an early stop leaves a complete
    comparison of fewer seeds."""
    parser = command_parser(COMMANDS[f"train {cfg.task}"], "compare")
    shared = base_flags(cfg, parser)
    axes = []  # each a list of choices, each choice a list of (setting, value)
    if cfg.variants:
        axes.append([variant_settings(text) for text in cfg.variants])
    for text in cfg.vary or ():
        setting, values = parse_assignment(text, "--vary")
        axes.append([[(setting, value)] for value in values])
    combos = [sum(choice, []) for choice in itertools.product(*axes)]
    runs = []
    for seed in range(cfg.seeds):
        for combo in combos:
            variant = ", ".join(f"{s}={v}" for s, v in combo) or "base"
            flags = [f for s, v in combo for f in as_flags(s, v, parser, f"--vary {s}={v}")]
            name = "+".join(slug(f"{s}-{v}") for s, v in combo) or "base"
            folder = Path(cfg.out) / name / f"seed-{seed}"
            argv = [*shared, *flags, "--seed", str(seed), "--out", str(folder)]
            runs.append(Planned(variant, seed, folder, argv))
    if len({r.folder for r in runs}) != len(runs):
        raise UserError("--vary: two variants would share a run folder; give distinct values")
    return runs


def check_runs(cfg: CompareOptions, runs: list[Planned]) -> None:
    """Every setting of every run still to start, checked before the first one trains."""
    task = TASKS[cfg.task]
    for run in runs:
        if RunFolder(run.folder).has_checkpoint():
            continue
        parser = command_parser(COMMANDS[f"train {cfg.task}"], run.variant)
        args = parser.parse_args(run.argv)
        try:
            resolve(task, build(RunOptions, args), args)
        except UserError as error:
            raise UserError(f"{run.variant}: {error}") from None


def load_state(cfg: CompareOptions, runs: list[Planned]) -> dict[str, Any]:
    """The comparison's file: a new one, or the one of an earlier call with the same plan."""
    out = Path(cfg.out)
    planned = {"task": cfg.task, "runs": [{"variant": r.variant, "seed": r.seed,
               "argv": r.argv} for r in runs]}  # fmt: skip
    path = out / PLAN_FILE
    if path.exists():
        state = read_json_object(path, "comparison plan", ("task", "runs", "measured"))
        if {k: state[k] for k in planned} != planned:
            raise UserError(f"{out}: holds a different comparison; rerun that one to continue "
                            "it, or choose another --out")  # fmt: skip
        return state
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out}: the folder already holds other files; choose another --out")
    return {**planned, "measured": {}}


def train_process(task: str, argv: list[str], log: Path) -> tuple[int, int | None, bool]:
    """Run `attnlab train TASK ARGV` in a process of its own; echo its progress lines, keep
    all it prints in `log`. Returns the exit status, the process's peak resident memory in
    bytes (None where the system does not tell) and whether a Ctrl-C (or SIGTERM) came: it
    asks the run to stop and save, and the comparison to stop after it."""
    command = [sys.executable, "-m", "attnlab", "train", task, *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as sink:
        # its own session: a terminal's Ctrl-C reaches it once, through us, never twice
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink, text=True,
                                   start_new_session=True)  # fmt: skip
        try:
            for line in process.stdout:
                sink.write(line)
                sink.flush()
                if line.startswith(("step ", "trained ", "stopped ", "model: ")):
                    print("    " + line.rstrip(), flush=True)
        except KeyboardInterrupt:
            interrupted = True
            process.send_signal(signal.SIGINT)
            for line in process.stdout:
                sink.write(line)
        else:
            interrupted = False
    if hasattr(os, "wait4"):
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes there, KiB on Linux
        return process.returncode, usage.ru_maxrss * scale, interrupted
    return process.wait(), None, interrupted


def run_all(cfg: CompareOptions, runs: list[Planned], state: dict[str, Any]) -> int:
    """Train what is not finished yet, one run after another; 0, or the exit status of the
    run that stopped the comparison."""
    out = Path(cfg.out)
    for i, run in enumerate(runs, 1):
        folder = RunFolder(run.folder)
        key = str(run.folder.relative_to(out))
        if folder.has_results():
            continue
        if folder.has_checkpoint():
            argv, doing = ["--resume", str(run.folder)], "resuming"
        else:
            argv, doing = [*run.argv, "--overwrite"], "training"  # nothing saved there yet
        print(f"[{i}/{len(runs)}] {run.variant}, seed {run.seed}: {doing} in {run.folder}",
              flush=True)  # fmt: skip
        started = time.perf_counter()
        status, peak, interrupted = train_process(cfg.task, argv, out / "logs" / f"{slug(key)}.log")
        measured = state["measured"].setdefault(key, {})
        wall = measured.get("wall_seconds", 0.0) + time.perf_counter() - started
        measured["wall_seconds"] = round(wall, 3)  # a resumed run: all its processes
        if peak is not None:  # a resumed run: the largest of its processes
            measured["peak_memory"] = max(peak, measured.get("peak_memory", 0))
        write_json(out / PLAN_FILE, state)
        if status in INTERRUPTED or interrupted:
            # killed by the signal before it could save (-2, -15): exit as a shell reports it
            status = (128 - status if status < 0 else status) if status in INTERRUPTED else 130
            finished = sum(RunFolder(r.folder).has_results() for r in runs)
            print(f"stopped: {finished} of {len(runs)} runs finished; the same command "
                  "continues the comparison")  # fmt: skip
            return status
        if status != 0:
            raise UserError(f"{run.variant}, seed {run.seed}: attnlab train failed (exit "
                            f"{status}); see {out / 'logs' / f'{slug(key)}.log'}")  # fmt: skip
    return 0


def report(cfg: CompareOptions, runs: list[Planned], state: dict[str, Any]) -> dict[str, Any]:
    """Table, plot and summary of the finished comparison."""
    out = Path(cfg.out)
    task = TASKS[cfg.task]
    curve_key = next(k for k in task.plot.values() if k.startswith("valid_"))
    summaries: list[RunSummary] = []
    for run in runs:
        key = str(run.folder.relative_to(out))
        measured = state["measured"].get(key, {})
        summaries.append(summarize_run(RunFolder(run.folder), run.variant, run.seed, curve_key,
                                       measured))  # fmt: skip
    rows = summary_rows(summaries)
    table = markdown_table(rows)
    write_text(out / TABLE_FILE, table + "\n")
    plot_curves(summaries, curve_key, out / PLOT_FILE)
    result = {"task": cfg.task, "rows": rows, "runs": [s.to_dict() for s in summaries],
              "table": str(out / TABLE_FILE), "plot": str(out / PLOT_FILE)}  # fmt: skip
    write_json(out / SUMMARY_FILE, result)
    print(table)
    print(f"table {out / TABLE_FILE}, curves {out / PLOT_FILE}")
    return result


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a scheduler, `timeout`) interrupts like Ctrl-C, so the running run saves."""

    def interrupt(number: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def compare(args: argparse.Namespace) -> int:
    cfg = build(CompareOptions, args)
    if not cfg.vary and not cfg.variants and cfg.seeds == 1:
        raise UserError("nothing to compare: give --vary SETTING=A,B, --variants or --seeds K")
    runs = plan(cfg)
    check_runs(cfg, runs)
    state = load_state(cfg, runs)
    write_json(Path(cfg.out) / PLAN_FILE, state)
    with sigterm_interrupts():
        try:
            status = run_all(cfg, runs, state)
        except KeyboardInterrupt:  # between two runs: nothing is training
            print("stopped; the same command continues the comparison")
            return 130
    if status:
        return status
    result = report(cfg, runs, state)
    if cfg.json:
        print_json(result)
    return 0


register(Command(("compare",), "train variants side by side and tabulate them",
                 (("comparison", CompareOptions),), compare))  # fmt: skip
