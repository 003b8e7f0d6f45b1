"""Attention variants and the Universal Transformer on ListOps at equal training steps:
dense, sparse, Nystrom and a Universal Transformer, each from the same preset and data.

    .venv/bin/python -m benchmarks.listops_compare [--steps 600] [--size 10000] [--max-length 300]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import attnlab
from benchmarks.common import attnlab as run_attnlab
from benchmarks.common import results_of, table

VARIANTS = {
    "dense": [],
    "sparse (strided, block 32)": ["--attention", "sparse", "--sparse.block", "32"],
    "nystrom (64 landmarks)": ["--attention", "nystrom", "--nystrom.landmarks", "64"],
    # One shared block applied up to 4 times with ACT has the parameters of one block.
    "dense-1 (one block)": ["--depth", "1"],
    "universal (ACT, 4 steps)": ["--model", "universal", "--universal.max-steps", "4"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--max-length", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-listops"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args()
    context = int(args.max_length * 1.25)
    common = ["--preset", "listops-small", "--size", args.size, "--max-length", args.max_length]
    common += ["--context", context, "--steps", args.steps, "--eval-every", args.steps // 3]
    rows = []
    for name in args.variants:
        folder = args.out / name.split()[0]
        _, seconds = run_attnlab(
            "train", "classify", *common, *VARIANTS[name], "--out", folder, "--overwrite",
            log=args.out / f"{name.split()[0]}.log",
        )  # fmt: skip
        result = results_of(folder)
        metrics = [json.loads(line) for line in (folder / "metrics.jsonl").open()]
        ponder = [m["ponder_steps_mean"] for m in metrics if "ponder_steps_mean" in m]
        rows.append({
            "model": name,
            "parameters": sum(p.numel() for p in attnlab.load(folder).parameters()),
            "valid accuracy": result["valid_accuracy"],
            "test accuracy": result["test_accuracy"],
            "test macro-F1": result["test_macro_f1"],
            "mean ponder steps (last)": ponder[-1] if ponder else "-",
            "minutes": seconds / 60,
        })  # fmt: skip
    print(table(rows, list(rows[0])))
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
