"""A CSV of 10,000 short texts, trained from one command: which standard-library package
(asyncio, email, unittest or xml) a single line of source code comes from. The CSV is built
from the running Python's own library, so the benchmark needs no download.

The same split files go to TF-IDF + logistic regression (scikit-learn, the `bench` extra), the
classical baseline, and to `attnlab train classify` for a fixed number of minutes.

    .venv/bin/python -m benchmarks.csv_classify [--minutes 5] [--flags "..."] [--out runs/bench-csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sysconfig
import time
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


def write_splits(folder: Path, per_class: int, seed: int = 0) -> dict[str, Path]:
    """train.csv, valid.csv and test.csv (80/10/10, stratified) of `per_class` lines from
    each package; the same files for attnlab and the classical baseline."""
    rng = random.Random(seed)
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "valid": [], "test": []}
    for package in PACKAGES:
        lines = rng.sample(sorted(set(source_lines(package))), per_class)
        cut1, cut2 = per_class * 8 // 10, per_class * 9 // 10
        for name, part in (("train", lines[:cut1]), ("valid", lines[cut1:cut2]),
                           ("test", lines[cut2:])):  # fmt: skip
            splits[name] += [(line, package) for line in part]
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in splits.items():
        rng.shuffle(rows)
        paths[name] = folder / f"{name}.csv"
        with open(paths[name], "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(("text", "label"))
            writer.writerows(rows)
    return paths


def read_split(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def tfidf_baseline(paths: dict[str, Path]) -> dict:
    """TF-IDF of word and character n-grams with logistic regression (scikit-learn): the
    classical baseline, fitted on train, scored on valid and test."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    started = time.perf_counter()
    features = make_union(
        TfidfVectorizer(token_pattern=r"\w+|[^\w\s]", ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    model = make_pipeline(features, LogisticRegression(C=10.0, max_iter=2000))
    model.fit(*read_split(paths["train"]))
    result = {"seconds": round(time.perf_counter() - started, 1)}
    for split in ("valid", "test"):
        texts, labels = read_split(paths[split])
        result[f"{split} accuracy"] = round(float(model.score(texts, labels)), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--per-class", type=int, default=2500)
    parser.add_argument("--flags", default="", help="attnlab flags beside the default recipe")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-csv"))
    args = parser.parse_args()
    paths = write_splits(args.out, args.per_class)
    baseline = tfidf_baseline(paths)
    print(json.dumps({"TF-IDF + logistic regression": baseline}), flush=True)
    _, seconds = attnlab(
        "train", "classify", "--data", paths["train"], "--valid", paths["valid"], "--test",
        paths["test"], "--minutes", args.minutes, *args.flags.split(), "--out",
        args.out / "run", "--overwrite", log=args.out / "train.log",
    )  # fmt: skip
    result = results_of(args.out / "run")
    summary = {
        "texts": sum(len(read_split(p)[0]) for p in paths.values()), "classes": len(PACKAGES),
        "flags": args.flags, "steps": result["step"],
        "train seconds": round(result["seconds"], 1), "command seconds": round(seconds, 1),
        "valid accuracy": result["valid_accuracy"], "test accuracy": result["test_accuracy"],
        "test macro-F1": result["test_macro_f1"], "baseline": baseline,
    }  # fmt: skip
    print(json.dumps(summary))
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
