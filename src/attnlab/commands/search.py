"""`attnlab search`: architecture and hyperparameter search over attnlab's own settings, on
Optuna (`search/`: the space, the budget, regularized evolution, the study, the report).

    attnlab search --preset tiny --minutes 1 --trials 30 --max-parameters 800000
    attnlab search --report                    # best trials, plots, best.yaml

Each trial is an `attnlab train TASK` run in this process, through the same loop and run
folders (`OUT/trial-NNNN`), with the settings the sampler drew laid over the shared ones; its
validation score at evenly spaced points of its budget goes to the pruner, its final score (and
speed, size) to the study. Any number of processes may work on one study: give each the same
`--storage` and `--study` (for many machines, a database URL: see `search/study.py`).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import option
from ..errors import UserError
from ..registry import COMMANDS, TASKS
from ..search import OBJECTIVES, PRUNERS, SAMPLERS, require_optuna
from ..search.budget import fits, stack_parameters, widest
from ..search.space import load_space, sample
from ..search.trial import PRUNED, TrialScores
from .base import Command, build, command_parser, print_json, register
from .run_flags import as_flags, base_flags
from .train import RunOptions, Settings, fit, prepared_run, resolve

# A trial evaluates through its own checks and saves once, at the end: unless the shared
# settings say otherwise, the loop's own evaluations and checkpoints are turned off.
TRIAL_DEFAULTS = ["--eval-every", "1000000000", "--save-every", "1000000000"]
QUIET_KEYS = ("eval_every", "save_every")  # not written into the best settings


@dataclass
class SearchOptions:
    """What to search, on what, how long, and where the study lives."""

    space: str = option("default", "search space: default, or a YAML / JSON file laid over it")
    objective: tuple = option(
        ("valid_bpb",), "what to optimise: one, or two for a Pareto front",
        choices=tuple(OBJECTIVES), many=True,
    )  # fmt: skip
    trials: int = option(20, "trials of the study in all (all processes, earlier calls)",
                         at_least=1)  # fmt: skip
    steps: int = option(0, "optimiser steps of each trial", at_least=0)
    minutes: float = option(0.0, "training minutes of each trial", at_least=0)
    total_minutes: float = option(0.0, "start no trial after this many minutes (0: no limit)",
                                  at_least=0)  # fmt: skip
    storage: str = option("", "the study's storage: sqlite:///FILE, journal:FILE or a "
                          "database URL (default: journal:OUT/STUDY.journal)")  # fmt: skip
    study: str = option("attnlab", "the study's name in the storage")
    sampler: str = option("tpe", "how trials are drawn (evolution: Real et al. 2019)",
                          choices=SAMPLERS)  # fmt: skip
    pruner: str = option("hyperband", "how bad trials are stopped early", choices=PRUNERS)
    checks: int = option(4, "validation scores per trial, for the pruner", at_least=1)
    population: int = option(10, "evolution: trials in the population", at_least=1)
    tournament: int = option(3, "evolution: members drawn to pick a parent", at_least=1)
    max_parameters: int = option(0, "budget: parameters of the layer stack (0: none)",
                                 at_least=0)  # fmt: skip
    max_flops: float = option(0.0, "budget: forward FLOPs per token (0: none)", at_least=0)
    task: str = option("lm", "what to train", choices=TASKS)
    data: str = option("", "the data of every trial (the task's --data)")
    preset: str = option("", "settings every trial starts from (a preset of the task)")
    config: str = option("", "a settings file (JSON or YAML) every trial starts from")
    set: tuple = option(None, "SETTING=VALUE: a setting shared by every trial", kind=str,
                        many=True)  # fmt: skip
    seed: int = option(0, "seed of the sampler and of each trial's training", at_least=0)
    out: str = option("runs/search", "folder of the trials' runs and the report")
    report: bool = option(False, "report what the study found (best, Pareto front, plots, "
                          "best settings) instead of searching")  # fmt: skip
    json: bool = option(False, "print one JSON object on the last line")


class Search:
    """The trials of one `attnlab search` call."""

    def __init__(self, cfg: SearchOptions):
        self.cfg = cfg
        self.task = TASKS[cfg.task]
        self.parser = command_parser(COMMANDS[f"train {cfg.task}"], "search")
        self.entries = load_space(cfg.space, self.task)
        self.shared = [*TRIAL_DEFAULTS, *base_flags(cfg, self.parser)]
        self.out = Path(cfg.out)
        scores = [v for v in self.task.plot.values() if v.startswith("valid_")]
        for objective in cfg.objective:
            if objective.startswith("valid_") and objective not in scores:
                raise UserError(f"--objective {objective}: {cfg.task} runs are scored by "
                                f"{', '.join(scores)}")  # fmt: skip
        self.metric = scores[0]
        base = self.settings(self.argv({}, self.out / "base"))  # checks the shared settings
        self.base = {**dataclasses.asdict(base.model), **base.train.to_dict()}
        self.sampler: Any = None

    def argv(self, chosen: dict[str, Any], folder: Path) -> list[str]:
        flags = []
        for name, value in chosen.items():
            flags += as_flags(name, format_flag(value), self.parser, f"space: {name}")
        seed = ["--seed", str(self.cfg.seed)]
        return [*self.shared, *flags, *seed, "--out", str(folder), "--overwrite"]

    def settings(self, argv: list[str]) -> Settings:
        args = self.parser.parse_args(argv)
        return resolve(self.task, build(RunOptions, args), args)

    def fit_budget(self, trial: Any, chosen: dict[str, Any], folder: Path) -> list[str]:
        """The trial's flags, with the widest width the budget allows unless the space draws
        the width; a drawn model over the budget is pruned before it trains."""
        cfg = self.cfg
        argv = self.argv(chosen, folder)
        model = self.settings(argv).model
        derived: dict[str, Any] = {}
        if (cfg.max_parameters or cfg.max_flops) and "width" not in chosen:
            step = model.heads * 8 if model.head_mode == "narrow" else 8
            width = widest(model, cfg.max_parameters, cfg.max_flops, step)
            if width is None:
                raise optuna_pruned(trial, f"no width fits the budget with {model.heads} heads")
            derived["width"] = width
            argv += ["--width", str(width)]
            model = self.settings(argv).model
        elif not fits(model, cfg.max_parameters, cfg.max_flops):
            raise optuna_pruned(trial, "over the budget")
        derived["stack_parameters"] = stack_parameters(model)
        trial.set_user_attr("derived", derived)
        return argv

    def objective(self, trial: Any) -> list[float]:
        import optuna

        try:
            return self.run_trial(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded on the trial; the study goes on
            message = str(error) if isinstance(error, UserError) else repr(error)
            trial.set_user_attr("error", message)
            raise

    def run_trial(self, trial: Any) -> list[float]:
        import optuna

        folder = self.out / f"trial-{trial.number:04d}"
        chosen = sample(trial, self.entries, self.base)
        if self.sampler is not None and hasattr(self.sampler, "parent_of"):
            trial.set_user_attr("parent", self.sampler.parent_of(trial.number))
        argv = self.fit_budget(trial, chosen, folder)
        trial.set_user_attr("run", str(folder))
        args = self.parser.parse_args(argv)
        quiet = lambda *_, **__: None  # noqa: E731
        with prepared_run(self.task, args, say=quiet) as (setup, task, model):
            trial.set_user_attr("objectives", list(self.cfg.objective))
            train = {k: v for k, v in setup.train.to_dict().items() if k not in QUIET_KEYS}
            settings = {"task": self.task.name, "model": model.cfg.to_dict(), "train": train,
                        "data": dataclasses.asdict(setup.data)}  # fmt: skip
            trial.set_user_attr("settings", settings)
            prune = len(self.cfg.objective) == 1 and self.cfg.pruner != "none"
            scores = TrialScores(trial, self.metric, self.cfg.checks, prune)
            run = fit(setup, task, model, self.task.name, [scores], final=False, progress=False)
        if run.stop == PRUNED:
            raise optuna.TrialPruned(f"pruned at check {scores.done} of {self.cfg.checks}")
        if run.stop is not None:
            raise KeyboardInterrupt
        values = {self.metric: scores.final, "tokens_per_s": scores.tokens_per_s,
                  "parameters": float(trial.user_attrs["derived"]["stack_parameters"])}  # fmt: skip
        return [values[o] for o in self.cfg.objective]


def format_flag(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def optuna_pruned(trial: Any, why: str) -> Exception:
    import optuna

    trial.set_user_attr("pruned", why)
    return optuna.TrialPruned(why)


def say_trial(study: Any, trial: Any) -> None:
    """One line per finished trial."""
    state = trial.state.name.lower()
    values = ", ".join(f"{v:.4g}" for v in trial.values or [])
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in trial.params.items())  # fmt: skip
    width = trial.user_attrs.get("derived", {}).get("width")
    why = trial.user_attrs.get("error") or trial.user_attrs.get("pruned") or ""
    line = f"trial {trial.number} {state}{' ' + values if values else ''} | {params}"
    line += f" width={width}" if width else ""
    print(line + (f" ({why})" if why else ""), flush=True)


def search(args: argparse.Namespace) -> int:
    cfg = build(SearchOptions, args)
    require_optuna()
    import optuna

    from ..search.report import report
    from ..search.study import make_pruner, make_sampler, open_study, storage_for

    url = cfg.storage or f"journal:{Path(cfg.out) / cfg.study}.journal"
    storage = storage_for(url, create=not cfg.report)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is ours to print
    if cfg.report:
        result = report(open_study(storage, cfg.study), Path(cfg.out) / "report")
        if cfg.json:
            print_json(result)
        return 0
    if not cfg.steps and not cfg.minutes:
        raise UserError("give each trial a budget: --steps N or --minutes M")
    if len(cfg.objective) > 2 or len(set(cfg.objective)) != len(cfg.objective):
        raise UserError("--objective: one objective, or two different ones")
    runner = Search(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    sampler = make_sampler(cfg.sampler, len(cfg.objective), cfg.seed, cfg.population,
                           cfg.tournament)  # fmt: skip
    runner.sampler = sampler
    study = open_study(storage, cfg.study, cfg.objective, sampler=sampler,
                       pruner=make_pruner(cfg.pruner, cfg.checks))  # fmt: skip
    stop = optuna.study.MaxTrialsCallback(cfg.trials, states=None)
    if len(study.trials) < cfg.trials:
        try:
            study.optimize(runner.objective, timeout=cfg.total_minutes * 60 or None,
                           catch=(Exception,), callbacks=[say_trial, stop])  # fmt: skip
        except KeyboardInterrupt:
            print("stopped; the study keeps its finished trials: the same command continues it")
            return 130
    result = report(study, Path(cfg.out) / "report")
    if cfg.json:
        print_json(result)
    return 0


register(Command(("search",), "search attnlab's settings for the best model (Optuna)",
                 (("search", SearchOptions),), search))  # fmt: skip
