"""External memory against an LSTM and a transformer on the NTM paper's tasks, for equal
minutes of training: the length-generalisation table and plot of Graves et al. 2014 (§4), and
the sequences each model needed to reach a bit error below 1 at the longest training length.

    .venv/bin/python -m benchmarks.algorithmic copy --models ntm lstm transformer \\
        --minutes 15 --lengths 10 20 30 40 60
    .venv/bin/python -m benchmarks.algorithmic associative-recall --models ntm dnc lstm \\
        --minutes 15 --lengths 3 6 9 12

Each model trains at its `attnlab train algorithmic` defaults (one run each, seed 0; the NTM
and DNC with `--compile`, their fastest form), then is scored on 512 test sequences per
length. Results: benchmarks/results/algorithmic_TASK.json and .png; each run folder keeps its
curves, metrics and pictures.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import attnlab
from attnlab.tasks.algorithmic import TRAINING_LENGTHS
from attnlab.tasks.algorithmic_report import plot_bit_error
from benchmarks.common import attnlab as run_attnlab
from benchmarks.common import results_of, table

RESULTS = Path(__file__).parent / "results"


def first_below(folder: Path, key: str, threshold: float) -> int | None:
    """The first step whose `key` (a validation metric) fell below `threshold`."""
    for line in (folder / "metrics.jsonl").open():
        row = json.loads(line)
        if row.get(key, threshold) < threshold:
            return row["step"]
    return None


def run_model(task: str, model: str, args: argparse.Namespace) -> dict:
    folder = args.out / model
    budget = ["--steps", args.steps] if args.steps else ["--minutes", args.minutes]
    budget += ["--compile"] if model in args.compile else []
    run_attnlab("train", "algorithmic", "--task", task, "--model", model, *budget,
                "--eval-every", args.eval_every, "--out", folder, "--overwrite",
                log=args.out / f"{model}.log")  # fmt: skip
    lengths = [str(n) for n in args.lengths]
    result, _ = run_attnlab("eval", folder, "--length", *lengths, "--json")
    meta = json.loads((folder / "train.json").read_text())
    trained = results_of(folder)
    converged = first_below(folder, "valid_bit_error", 1.0)
    batch = meta["train"]["batch_size"]
    return {
        "model": model,
        "parameters": sum(p.numel() for p in attnlab.load(folder).parameters()),
        "steps": trained["step"],
        "minutes": trained["seconds"] / 60,
        "sequences seen": trained["step"] * batch,
        "sequences to bit error < 1": converged * batch if converged else None,
        "by_length": result["by_length"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=list(TRAINING_LENGTHS))
    parser.add_argument("--models", nargs="+", default=["ntm", "lstm", "transformer"])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--steps", type=int, default=0, help="a step budget instead of minutes")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--compile", nargs="*", default=["ntm", "dnc"],
                        help="models whose recurrent step is compiled (--compile)")  # fmt: skip
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 30, 40, 60])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.out = args.out or Path("runs") / f"bench-{args.task}"
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [run_model(args.task, model, args) for model in args.models]
    for row in rows:
        for score in row["by_length"]:
            row[f"bits wrong at {score['length']}"] = score["bit_error_per_sequence"]
    columns = ["model", "parameters", "steps", "minutes", "sequences to bit error < 1"]
    print(table(rows, columns + [f"bits wrong at {n}" for n in args.lengths]))
    RESULTS.mkdir(exist_ok=True)
    name = f"algorithmic_{args.task.replace('-', '_')}"
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    xlabel = "items" if args.task == "associative-recall" else "length"
    curves = {row["model"]: row["by_length"] for row in rows}
    plot_bit_error(curves, TRAINING_LENGTHS[args.task], RESULTS / f"{name}.png",
                   f"{args.task}: {args.minutes:g} minutes of training each", xlabel)  # fmt: skip
    for model in ("ntm", "dnc"):
        if (args.out / model / "memory.png").is_file():
            shutil.copy(args.out / model / "memory.png", RESULTS / f"{name}_{model}_memory.png")


if __name__ == "__main__":
    main()
