"""Transformer-XL against the vanilla language model on the default corpus (Dai et al. 2019):
same segment length, about the same parameters, the same number of steps; then XL evaluated
with longer memories, and generation speed per token of both.

    .venv/bin/python -m benchmarks.xl_vs_vanilla [--steps 1000] [--out runs/bench-xl]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import attnlab
from benchmarks.common import attnlab as run_attnlab
from benchmarks.common import results_of, table

MODEL = ["--context", "128", "--depth", "4", "--width", "128", "--heads", "4"]


def generation_speed(folder: Path, tokens: int = 256) -> float:
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
    parser.add_argument("--out", type=Path, default=Path("runs/bench-xl"))
    args = parser.parse_args()
    train = ["--data", "stdlib", "--steps", args.steps, "--batch-size", "16", "--lr", "2e-3"]
    train += ["--warmup", "50", "--eval-every", args.steps, "--save-every", args.steps]
    rows = []
    for name, extra in (("vanilla", []), ("xl", ["--model", "xl", "--xl.memory", "128"])):
        folder = args.out / name
        _, seconds = run_attnlab(
            "train", "lm", *train, *MODEL, *extra, "--out", folder, "--overwrite",
            log=args.out / f"{name}.log",
        )  # fmt: skip
        params = sum(p.numel() for p in attnlab.load(folder).parameters())
        memories = [None] if name == "vanilla" else [128, 256, 512]
        for memory in memories:
            flags = [] if memory is None else ["--memory", memory]
            result, _ = run_attnlab("eval", folder, "--split", "valid", "--json", *flags)
            rows.append({
                "model": name, "parameters": params, "eval memory": memory or "-",
                "valid bpb": result["bits_per_byte"], "train minutes": seconds / 60,
                "generation tok/s": generation_speed(folder),
            })  # fmt: skip
        print(json.dumps(results_of(folder)))
    columns = ["model", "parameters", "eval memory", "valid bpb", "train minutes"]
    print(table(rows, columns + ["generation tok/s"]))
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
