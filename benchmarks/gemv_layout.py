"""One token's matrix-vector products, by weight layout: what the decoding step
(`attnlab.models.decode`) multiplies by.

The 24 weights of the benchmark model (6 blocks of width 256: q/k/v 768 × 256, the output map
256 × 256, the feed-forward maps 1024 × 256 and 256 × 1024, about 19 MB) are multiplied in turn
by a (1, in) row, as decoding does, so they stream from the last-level cache rather than sit in
L2. Forms, interleaved round by round with the order turned every other round:

- `linear`: `F.linear(x, W, b)` with nn.Linear's (out, in) weight, the model's forward;
- `transposed`: `torch.addmm(b, x, Wᵀ)` with the weight copied to (in, out), the step's;
- `onednn packed`, `mkl packed`: the weight reordered ahead by oneDNN or MKL (what
  `torch.compile` uses for linear layers on a CPU).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gemv_layout.py [--rounds 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

SHAPES = [(768, 256), (256, 256), (1024, 256), (256, 1024)] * 6  # (out, in) per block


def forms() -> dict[str, Callable[[], None]]:
    weights = [torch.randn(o, i) for o, i in SHAPES]
    biases = [torch.randn(o) for o, _ in SHAPES]
    rows = [torch.randn(1, i) for _, i in SHAPES]
    transposed = [w.t().contiguous() for w in weights]
    onednn = [torch.ops.mkldnn._reorder_linear_weight(w, 1) for w in weights]
    mkl = [torch.ops.mkl._mkl_reorder_linear_weight(w, 1) for w in weights]
    mkldnn_linear = torch.ops.mkldnn._linear_pointwise
    pairs = list(zip(weights, biases, rows, transposed, onednn, mkl, strict=True))

    def linear():
        for w, b, x, *_ in pairs:
            F.linear(x, w, b)

    def transposed_addmm():
        for _, b, x, wt, *_ in pairs:
            torch.addmm(b, x, wt)

    def onednn_packed():
        for _, b, x, _, packed, _ in pairs:
            mkldnn_linear(x, packed, b, "none", [], "")

    def mkl_packed():
        for w, b, x, _, _, packed in pairs:
            torch.ops.mkl._mkl_linear(x, packed, w, b, 1)

    return {
        "linear": linear,
        "transposed": transposed_addmm,
        "onednn packed": onednn_packed,
        "mkl packed": mkl_packed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=20, help="passes over the weights a round")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    contenders = forms()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    with torch.inference_mode():
        for run in contenders.values():
            run()
        for r in range(args.rounds):
            order = list(contenders.items())
            for name, run in order if r % 2 == 0 else reversed(order):
                start = time.perf_counter()
                for _ in range(args.repeat):
                    run()
                times[name].append((time.perf_counter() - start) / args.repeat * 1e6)

    def paired(t: list[float]) -> float:
        return statistics.median(a / b for a, b in zip(times["linear"], t, strict=True))

    result = {
        name: {"median_us_per_token": statistics.median(t), "speed_vs_linear_paired": paired(t)}
        for name, t in times.items()
    }
    for name, row in result.items():
        print(f"{name:>14}: {row['median_us_per_token']:7.0f} µs for the 24 products, "
              f"{row['speed_vs_linear_paired']:.2f}× linear (paired)")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": torch.get_num_threads(), "rounds": args.rounds, **result}, f,
                      indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
