"""Attention variants and the Universal Transformer on ListOps at equal training steps, as one
`attnlab compare`: dense, sparse, Nyström, one dense block and a Universal Transformer, each
from the same preset, data, seeds and budget.

    .venv/bin/python -m benchmarks.listops_compare [--steps 600] [--size 10000] [--max-length 300]
        [--seeds 1] [--out runs/bench-listops]

The table (accuracy mean ± spread over seeds, parameters, speed, memory, time) is printed and
written to OUT/compare.md, the curves to OUT/compare.png.
"""

from __future__ import annotations

import argparse

from benchmarks.common import attnlab

VARIANTS = [
    "attention=dense",
    "attention=sparse sparse.block=32",
    "attention=nystrom nystrom.landmarks=64",
    # One shared block applied up to 4 times with ACT has the parameters of one block.
    "depth=1",
    "model=universal universal.max-steps=4",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--max-length", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", default="runs/bench-listops")
    args = parser.parse_args()
    attnlab(
        "compare", "--task", "classify", "--preset", "listops-small", "--steps", args.steps,
        "--seeds", args.seeds, "--out", args.out, "--variants", *VARIANTS,
        "--set", f"size={args.size}", f"max-length={args.max_length}",
        f"context={int(args.max_length * 1.25)}", f"eval-every={max(1, args.steps // 3)}",
        echo=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
