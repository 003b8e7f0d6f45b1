"""Labelling texts with a trained classifier: `attnlab predict DIR --text T | --file F`."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from .checkpoint import load
from .cli import print_json
from .data.tokenizers import load_tokenizer
from .device import pick_device
from .errors import UserError
from .models import Classifier

LABELS_FILE = "labels.json"  # the class names, in the order of the classifier's outputs


def read_labels(folder: Path) -> list[str]:
    path = folder / LABELS_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing class names")
    return json.loads(path.read_text())


def predict(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    model, tokenizer = load(args.run, device), load_tokenizer(args.run)
    if not isinstance(model, Classifier):
        raise UserError(f"{args.run}: holds a {model.kind}, not a classifier")
    classes = read_labels(args.run)
    texts = [args.text] if args.text is not None else read_texts(args.file, args.text_column)
    results = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer.encode(text)[: model.cfg.context]
            tokens = torch.as_tensor(ids.astype("int64") if len(ids) else [tokenizer.pad_id or 0])
            probs = model(tokens[None].to(device)).softmax(-1)[0].tolist()
            best = max(range(len(classes)), key=probs.__getitem__)
            results.append(
                {
                    "text": text,
                    "label": classes[best],
                    "probabilities": dict(zip(classes, probs, strict=True)),
                }
            )
            if not args.json:
                shown = ", ".join(f"{c} {p:.3f}" for c, p in zip(classes, probs, strict=True))
                print(f"{classes[best]}\t({shown})\t{text[:60]!r}")
    if args.json:
        print_json({"predictions": results})
    return 0


def read_texts(path: Path, column: str | None) -> list[str]:
    """One text per line, or the text column of a CSV / TSV file."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.suffix.lower() not in (".csv", ".tsv"):
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    column = column or "text"
    if not rows or column not in rows[0]:
        found = ", ".join(rows[0]) if rows else "none"
        raise UserError(f"{path}: no column {column!r} (columns: {found}); give --text-column")
    return [row[column] for row in rows]
