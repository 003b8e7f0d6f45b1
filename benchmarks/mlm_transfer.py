"""Transfer, measured: does pretraining a masked language model on unlabelled text make a
better classifier than training the same classifier from scratch for the same total time?

The labelled task: which standard-library package (asyncio, email, unittest or xml) a single
line of source code comes from (`benchmarks/csv_classify.py`'s lines), split 80/10/10 into
train, valid and test. The unlabelled text: the whole standard library and pydoc topics
(the default corpus), with every valid and test line removed, so pretraining never reads a
held-out text.

    pretrained:   attnlab train mlm (M minutes), then train classify --init (N minutes)
    from scratch: train classify, the same model, tokenizer kind and size (M + N minutes)

at 10 %, 30 % and 100 % of the training labels: a label-efficiency curve.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.mlm_transfer [--pretrain-minutes 15]
        [--finetune-minutes 5] [--out runs/bench-mlm-transfer]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

from attnlab.data.text import read_stdlib
from attnlab.tasks.mlm import BERT_LAYOUT
from benchmarks.common import attnlab, results_of
from benchmarks.csv_classify import PACKAGES, source_lines

RESULTS = Path(__file__).parent / "results"
# The model of `train mlm --preset tiny`, spelled as flags for the classifier from scratch.
SHAPE = ["--context", "128", "--depth", "4", "--width", "128", "--heads", "4"]
SHAPE += ["--norm", BERT_LAYOUT["norm"], "--activation", BERT_LAYOUT["activation"]]
SHAPE += ["--norm-eps", str(BERT_LAYOUT["norm_eps"]), "--embedding-norm"]
VOCAB = "4096"  # the preset's WordPiece vocabulary
# Both classifiers: dropout 0.1 (BERT's), mean pooling, batch 32. Learning rates: the
# classifier's default 1e-3 from scratch; 3e-4 for fine-tuning, a lower rate that moves
# pretrained weights less (Devlin et al. 2019, §A.3, fine-tune with a smaller rate).
COMMON = ["--dropout", "0.1", "--batch-size", "32", "--eval-every", "250", "--save-every", "1000"]


def labelled_rows(per_class: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Lines of each package, shuffled and split 80/10/10."""
    rng = random.Random(seed)
    rows = [
        (line, package)
        for package in PACKAGES
        for line in rng.sample(sorted(set(source_lines(package))), per_class)
    ]
    rng.shuffle(rows)
    n = len(rows) // 10
    return {"test": rows[:n], "valid": rows[n : 2 * n], "train": rows[2 * n :]}


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("text", "label"))
        writer.writerows(rows)
    return path


def unlabelled_text(path: Path, held_out: set[str]) -> dict:
    """The default corpus without any held-out line; how much was removed."""
    _, text = read_stdlib()
    lines = text.decode("utf-8", "replace").split("\n")
    kept = [line for line in lines if line.strip() not in held_out]
    path.write_text("\n".join(kept), encoding="utf-8")
    return {
        "lines": len(kept),
        "removed_lines": len(lines) - len(kept),
        "bytes": path.stat().st_size,
    }


def classify(out: Path, train: Path, files: dict[str, Path], minutes: float, *extra) -> dict:
    attnlab(
        "train", "classify", "--data", train, "--valid", files["valid"], "--test", files["test"],
        "--minutes", minutes, *COMMON, *extra, "--out", out, "--overwrite",
        log=out.with_suffix(".log"),
    )  # fmt: skip
    result = results_of(out)
    return {k: result[k] for k in ("step", "seconds", "valid_accuracy", "test_accuracy",
                                   "test_macro_f1")}  # fmt: skip


def plot(rows: list[dict], path: Path, pretrain: float, finetune: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [r["labels"] for r in rows]
    for key, name in (("pretrained", f"MLM {pretrain:g} min + fine-tune {finetune:g} min"),
                      ("scratch", f"from scratch, {pretrain + finetune:g} min")):  # fmt: skip
        ax.plot(labels, [100 * r[key]["test_accuracy"] for r in rows], "o-", label=name)
    ax.axhline(100 / len(PACKAGES), color="grey", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training lines")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Which package a line of source comes from (4 classes)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pretrain-minutes", type=float, default=15.0)
    parser.add_argument("--finetune-minutes", type=float, default=5.0)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--per-class", type=int, default=2500)
    parser.add_argument("--finetune-lr", type=float, default=3e-4)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-mlm-transfer"))
    parser.add_argument("--name", default="mlm_transfer", help="results file name")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = labelled_rows(args.per_class, seed=0)
    files = {split: write_rows(args.out / f"{split}.csv", part) for split, part in rows.items()}
    held_out = {text for split in ("valid", "test") for text, _ in rows[split]}
    corpus = unlabelled_text(args.out / "unlabelled.txt", held_out)
    print(json.dumps({"unlabelled": corpus}), flush=True)

    mlm = args.out / "mlm"
    attnlab("train", "mlm", "--data", args.out / "unlabelled.txt", "--preset", "tiny",
            "--minutes", args.pretrain_minutes, "--out", mlm, "--overwrite",
            log=args.out / "mlm.log")  # fmt: skip
    pretraining = results_of(mlm)
    print(json.dumps({"pretraining": pretraining}), flush=True)

    curve = []
    total = args.pretrain_minutes + args.finetune_minutes
    for fraction in args.fractions:
        n = round(fraction * len(rows["train"]))
        train = write_rows(args.out / f"train-{n}.csv", rows["train"][:n])
        row = {"fraction": fraction, "labels": n}
        row["pretrained"] = classify(args.out / f"pretrained-{n}", train, files,
                                     args.finetune_minutes, "--init", mlm,
                                     "--lr", args.finetune_lr)  # fmt: skip
        scratch = ["--tokenizer", "wordpiece", "--vocab-size", VOCAB, *SHAPE]
        row["scratch"] = classify(args.out / f"scratch-{n}", train, files, total, *scratch)
        row["gain"] = row["pretrained"]["test_accuracy"] - row["scratch"]["test_accuracy"]
        print(json.dumps(row), flush=True)
        curve.append(row)

    summary = {
        "pretrain_minutes": args.pretrain_minutes,
        "finetune_minutes": args.finetune_minutes,
        "finetune_lr": args.finetune_lr,
        "unlabelled": corpus,
        "pretraining": pretraining,
        "labelled": {split: len(part) for split, part in rows.items()},
        "curve": curve,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(summary, indent=2))
    plot(curve, RESULTS / f"{args.name}.png", args.pretrain_minutes, args.finetune_minutes)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
