"""`attnlab search --report`: what a study found. The best trials (and, with two objectives,
the Pareto front), what failed and why, Optuna's matplotlib plots, and the best trial's
settings as a file that `attnlab train TASK --config FILE` accepts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..io import atomic_write, write_text

BEST_CONFIG = "best.yaml"
SHOWN = 5  # best trials printed


def describe_trial(trial: FrozenTrial, objectives: list[str]) -> str:
    values = ", ".join(f"{o} {v:.4g}" for o, v in zip(objectives, trial.values, strict=True))
    params = " ".join(f"{k}={format_value(v)}" for k, v in trial.params.items())
    derived = trial.user_attrs.get("derived", {})
    extra = "".join(f" {k}={v}" for k, v in derived.items())
    return f"  trial {trial.number}: {values} | {params}{extra}"


def format_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished trials, best first by the first objective."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1
    return sorted(done, key=lambda t: sign * t.values[0])


def save_plots(study: optuna.Study, objectives: list[str], folder: Path) -> list[Path]:
    """Optuna's matplotlib plots: history and importances of the first objective, the Pareto
    front of two. A plot that the study cannot support yet (too few trials) is left out."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as plots

    target = {"target": lambda t: t.values[0], "target_name": objectives[0]}
    wanted = {"history.png": lambda: plots.plot_optimization_history(study, **target),
              "importances.png": lambda: plots.plot_param_importances(study, **target)}  # fmt: skip
    if len(objectives) == 2:
        wanted["pareto.png"] = lambda: plots.plot_pareto_front(study, target_names=objectives)
    written = []
    for name, plot in wanted.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" notices
                axes = plot()
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.tight_layout()
        path = atomic_write(folder / name, lambda tmp, f=figure: f.savefig(tmp, format="png"))
        matplotlib.pyplot.close(figure)
        written.append(path)
    return written


def write_best(trial: FrozenTrial, path: Path) -> Path:
    """The trial's settings as a settings file (YAML) for `attnlab train --config`."""
    import yaml

    settings = trial.user_attrs["settings"]
    header = (f"# attnlab search: trial {trial.number}, "
              + ", ".join(f"{k} {v:.4g}" for k, v in zip(
                  trial.user_attrs["objectives"], trial.values, strict=True)) + "\n")  # fmt: skip
    return write_text(path, header + yaml.safe_dump(settings, sort_keys=False))


def report(study: optuna.Study, folder: Path) -> dict[str, Any]:
    """Print and write what the study found; return it as JSON-ready data."""
    objectives = list(study.user_attrs.get("objectives", ["value"]))
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    print(f"study {study.study_name}: {len(trials)} trials ("
          + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")")  # fmt: skip
    ranked = best_trials(study)
    result: dict[str, Any] = {"study": study.study_name, "objectives": objectives,
                              "counts": counts, "best": [], "pareto": [], "failed": []}  # fmt: skip
    if ranked:
        print(f"best by {objectives[0]}:")
        for trial in ranked[:SHOWN]:
            print(describe_trial(trial, objectives))
        result["best"] = [trial_dict(t) for t in ranked[:SHOWN]]
    if len(objectives) > 1 and ranked:
        front = sorted(study.best_trials, key=lambda t: t.values[0])
        print(f"Pareto front of {' and '.join(objectives)}:")
        for trial in front:
            print(describe_trial(trial, objectives))
        result["pareto"] = [trial_dict(t) for t in front]
    for trial in trials:
        if trial.state == TrialState.FAIL:
            error = trial.user_attrs.get("error", trial.system_attrs.get("fail_reason", "?"))
            result["failed"].append({"number": trial.number, "error": error})
            print(f"  trial {trial.number} failed: {error}")
    folder.mkdir(parents=True, exist_ok=True)
    result["plots"] = [str(p) for p in save_plots(study, objectives, folder)]
    if ranked:
        result["best_config"] = str(write_best(ranked[0], folder / BEST_CONFIG))
        print(f"best settings: {result['best_config']} (attnlab train ... --config FILE)")
    if result["plots"]:
        print("plots: " + ", ".join(result["plots"]))
    return result


def trial_dict(trial: FrozenTrial) -> dict[str, Any]:
    return {"number": trial.number, "values": trial.values, "params": trial.params,
            "run": trial.user_attrs.get("run"), **trial.user_attrs.get("derived", {})}  # fmt: skip
