"""Time and memory of one attention layer against sequence length, for every kind.

    python benchmarks/attention.py [--lengths 512 1024 ...] [--kinds dense nystrom-256 ...]

Prints the table as rows finish and writes benchmarks/results/attention.json (the rows, the
machine, the settings) and attention.png (log-log plot). See `attnlab.bench` for what is
measured.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from attnlab.bench import LENGTHS, bench_kinds, format_table, run_attention_bench

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS[:-1]))
    kinds = list(bench_kinds())
    parser.add_argument("--kinds", nargs="+", default=kinds, help=", ".join(kinds))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "attention.json")
    args = parser.parse_args()
    rows = run_attention_bench(
        args.lengths,
        args.kinds,
        device=args.device,
        repeats=args.repeats,
        plot=args.out.with_suffix(".png"),
        log=lambda line: print(line, flush=True),
    )
    print(format_table(rows))
    machine = {
        "torch": torch.__version__,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine, "repeats": args.repeats, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
