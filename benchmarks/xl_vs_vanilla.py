"""Transformer-XL against the vanilla language model on the default corpus (Dai et al. 2019),
as one `attnlab compare`: same segment length, about the same parameters, the same steps;
then XL evaluated with longer memories (`attnlab eval --memory`), and the generation speed per
token of both.

    .venv/bin/python -m benchmarks.xl_vs_vanilla [--steps 1000] [--seeds 1] [--out runs/bench-xl]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import attnlab
from benchmarks.common import attnlab as run_attnlab
from benchmarks.common import table

MODEL = ["context=128", "depth=4", "width=128", "heads=4"]


def generation_speed(folder: str, tokens: int = 256) -> float:
    """Tokens per second of cached greedy generation, batch 1, one thread."""
    torch.set_num_threads(1)
    model = attnlab.load(folder)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    model.generate(prompt, 8, temperature=0)  # warm-up
    started = time.perf_counter()
    model.generate(prompt, tokens, temperature=0)
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-xl"))
    args = parser.parse_args()
    train = ["batch-size=16", "lr=2e-3", "warmup=50", f"eval-every={args.steps // 4}",
             f"save-every={args.steps}"]  # fmt: skip
    summary, _ = run_attnlab(
        "compare", "--data", "stdlib", "--steps", args.steps, "--seeds", args.seeds,
        "--out", args.out, "--variants", "model=transformer", "model=xl xl.memory=128",
        "--set", *MODEL, *train, "--json", echo=True,
    )  # fmt: skip
    rows = []
    for run in summary["runs"]:
        xl = run["variant"].startswith("model=xl")
        for memory in [128, 256, 512] if xl else [None]:
            flags = [] if memory is None else ["--memory", memory]
            result, _ = run_attnlab("eval", run["folder"], "--split", "valid", "--json", *flags)
            rows.append({
                "model": run["variant"], "seed": run["seed"], "parameters": run["parameters"],
                "eval memory": memory or "-", "valid bpb": result["bits_per_byte"],
                "train minutes": run["seconds"] / 60,
                "generation tok/s": generation_speed(run["folder"]),
            })  # fmt: skip
    print(table(rows, list(rows[0])))
    (args.out / "memories.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
