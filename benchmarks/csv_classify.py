"""A CSV of 10,000 short texts, trained from one command: which standard-library package
(asyncio, email, unittest or xml) a single line of source code comes from. The CSV is built
from the running Python's own library, so the benchmark needs no download.

    .venv/bin/python -m benchmarks.csv_classify [--steps 400] [--out runs/bench-csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sysconfig
from pathlib import Path

from benchmarks.common import attnlab, results_of

PACKAGES = ("asyncio", "email", "unittest", "xml")


def source_lines(package: str) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"]) / package
    lines = []
    for path in sorted(root.rglob("*.py")):
        if "test" in path.relative_to(root).parts:
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if 20 <= len(line) <= 120 and not line.startswith("#"):
                lines.append(line)
    return lines


def write_csv(path: Path, per_class: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    rows = [
        (line, package)
        for package in PACKAGES
        for line in rng.sample(sorted(set(source_lines(package))), per_class)
    ]
    rng.shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("text", "label"))
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-csv"))
    args = parser.parse_args()
    data = args.out / "lines.csv"
    count = write_csv(data, 2500)
    model = ["--context", "96", "--depth", "2", "--width", "128", "--heads", "4"]
    _, seconds = attnlab(
        "train", "classify", "--data", data, "--steps", args.steps, "--batch-size",
        args.batch_size, "--eval-every", args.steps // 4, *model, "--out", args.out / "run",
        "--overwrite", log=args.out / "train.log",
    )  # fmt: skip
    result = results_of(args.out / "run")
    examples = args.steps * args.batch_size
    summary = {
        "texts": count, "classes": len(PACKAGES), "steps": args.steps,
        "train seconds": round(result["seconds"], 1), "command seconds": round(seconds, 1),
        "examples/s": round(examples / result["seconds"], 1),
        "valid accuracy": result["valid_accuracy"], "valid macro-F1": result["valid_macro_f1"],
    }  # fmt: skip
    print(json.dumps(summary))
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
