"""The generated reverse task (strings of 1 to 20 letters) with the `tiny` preset: exact match on
held-out strings, with beam 4 (the run's final scores) and greedy, and the CPU time it took.

    python -m benchmarks.seq2seq_reverse [--out runs/bench-reverse] [--json PATH] [flags...]

Extra flags go to `attnlab train seq2seq` (e.g. `--steps 2000`).
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path

from benchmarks.common import attnlab, results_of


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/bench-reverse")
    parser.add_argument("--json", default="")
    args, extra = parser.parse_known_args()
    out = Path(args.out)
    before = cpu_seconds()
    _, wall = attnlab("train", "seq2seq", "--preset", "tiny", "--out", out, "--overwrite",
                      *extra, log=out.with_suffix(".log"))  # fmt: skip
    train_cpu = cpu_seconds() - before
    result = {"train_wall_s": wall, "train_cpu_s": train_cpu, "final": results_of(out)}
    final = result["final"]  # the held-out splits scored with the run's beam (4)
    print(f"beam 4: test exact match {final['test_exact_match']:.4f}, BLEU "
          f"{final['test_bleu']:.2f}")  # fmt: skip
    scores, seconds = attnlab("eval", out, "--beam", 1, "--json")
    result["test_greedy"] = {**scores, "seconds": seconds}
    print(f"greedy: test exact match {scores['exact_match']:.4f}, BLEU {scores['bleu']:.2f} "
          f"on {scores['sources']} held-out strings ({seconds:.0f} s)")  # fmt: skip
    print(f"training: {wall / 60:.1f} minutes wall, {train_cpu / 60:.1f} CPU minutes")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
