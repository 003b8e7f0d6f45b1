"""What `attnlab compare` reports of finished runs: per run, the scores its training saved, its
speed and its validation curve; per variant, the mean and spread over seeds; a Markdown table
and a plot of the curves against steps and against seconds.

Everything is read from the run folders (`results.json`, `metrics.jsonl`, the saved model), so
the table shows exactly what `attnlab eval` and the run's own files say.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from .io import atomic_write
from .models.base import parameter_count
from .runs import RunFolder
from .training.metrics_log import read_rows

HELD_OUT = ("valid", "test")  # score names start with a split: valid_bpb, test_accuracy


@dataclass
class RunSummary:
    """One finished run: its scores (`{split}_{metric}` of `results.json`), speed and curve."""

    variant: str
    seed: int
    folder: str
    scores: dict[str, float]
    parameters: int
    tokens_per_s: float | None
    seconds: float  # training, evaluations during training included (the budget's clock)
    steps: int
    peak_memory: int | None  # bytes: the training process's peak resident memory
    wall_seconds: float | None  # the training process's, from start to exit
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (step, seconds, score)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "curve": [list(point) for point in self.curve]}


def summarize_run(
    folder: RunFolder, variant: str, seed: int, curve_key: str, measured: dict[str, Any]
) -> RunSummary:
    """Read a finished run folder; `measured`: what the processes that trained it measured
    (`peak_memory`, `wall_seconds`)."""
    results = folder.read_results()
    seconds = float(folder.checkpoint_metadata()["seconds"])  # saved before the final scores
    splits = tuple(f"{split}_" for split in HELD_OUT)
    scores = {k: v for k, v in results.items() if k.startswith(splits) and isinstance(v, float)}
    rows = read_rows(folder.file(folder.METRICS))
    rates = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    curve = [(r["step"], r["seconds"], r[curve_key]) for r in rows
             if curve_key in r and "seconds" in r]  # fmt: skip
    if not curve and curve_key in results:  # no checks during training: the final score
        curve.append((results["step"], seconds, results[curve_key]))
    return RunSummary(
        variant=variant,
        seed=seed,
        folder=str(folder),
        scores=scores,
        parameters=parameter_count(folder.load_model("cpu")),
        # the median report: the first steps (allocation, warm-up) do not drag it down
        tokens_per_s=statistics.median(rates) if rates else None,
        seconds=seconds,
        steps=int(results.get("step", 0)),
        peak_memory=measured.get("peak_memory"),
        wall_seconds=measured.get("wall_seconds"),
        curve=curve,
    )


def mean_spread(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else None


def summary_rows(runs: list[RunSummary]) -> list[dict[str, Any]]:
    """One row per variant, in the order first seen: every score and measure as
    (mean, spread) over its seeds."""
    variants: dict[str, list[RunSummary]] = {}
    for run in runs:
        variants.setdefault(run.variant, []).append(run)
    rows = []
    for variant, group in variants.items():
        names = [k for k in group[0].scores if all(k in r.scores for r in group)]
        row: dict[str, Any] = {"variant": variant, "seeds": len(group)}
        for name in names:
            row[name] = mean_spread([r.scores[name] for r in group])
        row["parameters"] = group[0].parameters
        steps = {r.steps for r in group}
        row["steps"] = steps.pop() if len(steps) == 1 else mean_spread([r.steps for r in group])
        for name in ("tokens_per_s", "peak_memory", "seconds", "wall_seconds"):
            values = [getattr(r, name) for r in group]
            row[name] = mean_spread(values) if None not in values else None
        rows.append(row)
    return rows


def cell(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, tuple):
        mean, spread = value
        text = f"{mean:,.{digits}f}"
        return text if spread is None else f"{text} ± {spread:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table: scores to 4 decimals, speed and memory rounded."""
    scores = [k for k in rows[0] if k.startswith(tuple(f"{s}_" for s in HELD_OUT))]
    columns = [("variant", "variant", 0), ("seeds", "seeds", 0)]
    columns += [(k, k, 4) for k in scores]
    columns += [("parameters", "parameters", 0), ("tokens_per_s", "tokens/s", 0),
                ("peak_memory", "peak MiB", 0), ("seconds", "train min", 2),
                ("wall_seconds", "wall min", 2), ("steps", "steps", 0)]  # fmt: skip
    lines = ["| " + " | ".join(title for _, title, _ in columns) + " |",
             "|" + "---|" * len(columns)]  # fmt: skip
    for row in rows:
        cells = []
        for key, _, digits in columns:
            value = row.get(key)
            if key == "peak_memory" and value is not None:
                value = tuple(None if v is None else v / 2**20 for v in value)
            if key in ("seconds", "wall_seconds") and value is not None:
                value = tuple(None if v is None else v / 60 for v in value)
            cells.append(cell(value, digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(runs: list[RunSummary], key: str, path: Any) -> None:
    """Validation score against steps (left) and against training seconds (right): one
    colour per variant, one line per seed."""
    from matplotlib.figure import Figure  # here: matplotlib takes a while to import

    fig = Figure(figsize=(12, 4.5))
    by_steps, by_seconds = fig.subplots(1, 2)
    colours: dict[str, str] = {}
    for run in runs:
        if not run.curve:
            continue
        colour = colours.setdefault(run.variant, f"C{len(colours) % 10}")
        steps, seconds, values = zip(*run.curve, strict=True)
        label = run.variant if run.seed == min(r.seed for r in runs if r.variant == run.variant) \
            else None  # fmt: skip
        marker = "." if len(values) < 30 else None
        by_steps.plot(steps, values, color=colour, label=label, marker=marker, alpha=0.8)
        by_seconds.plot(seconds, values, color=colour, marker=marker, alpha=0.8)
    for ax, x in ((by_steps, "step"), (by_seconds, "training seconds")):
        ax.set_xlabel(x)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    by_steps.legend(fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
