"""`attnlab predict RUN --text T | --file F`: label texts with a trained classifier."""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ConfigError, device_option, option
from ..device import pick_device
from ..errors import UserError
from ..models import Classifier
from ..runs import RunFolder
from .base import Command, build, print_json, register


@dataclass
class PredictConfig:
    run: str = option("", "run folder", positional=True)
    text: str = option(None, "one text", kind=str)
    file: str = option(None, "one text per line, or a CSV / TSV with a text column", kind=str)
    text_column: str = option("text", "the CSV / TSV column holding the texts")
    device: str = device_option()
    json: bool = option(False, "print one JSON object on the last line")

    def __post_init__(self) -> None:
        if (self.text is None) == (self.file is None):
            raise ConfigError("give exactly one of --text TEXT or --file PATH")


def predict(args: argparse.Namespace) -> int:
    cfg = build(PredictConfig, args)
    folder = RunFolder(cfg.run)
    device = pick_device(cfg.device)
    model = folder.load_model(device, expect=Classifier)
    tokenizer, classes = folder.tokenizer(), folder.labels(model.num_classes)
    texts = [cfg.text] if cfg.text is not None else read_texts(Path(cfg.file), cfg.text_column)
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
            if not cfg.json:
                shown = ", ".join(f"{c} {p:.3f}" for c, p in zip(classes, probs, strict=True))
                print(f"{classes[best]}\t({shown})\t{text[:60]!r}")
    if cfg.json:
        print_json({"predictions": results})
    return 0


def read_texts(path: Path, column: str) -> list[str]:
    """One text per line, or the text column of a CSV / TSV file."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if path.suffix.lower() not in (".csv", ".tsv"):
            lines = path.read_text(encoding="utf-8").splitlines()
            return [line for line in lines if line.strip()]
        with open(path, newline="", encoding="utf-8") as f:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            rows = list(csv.DictReader(f, delimiter=delimiter))
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8") from error
    if not rows or column not in rows[0]:
        found = ", ".join(rows[0]) if rows else "none"
        raise UserError(f"{path}: no column {column!r} (columns: {found}); give --text-column")
    return [row[column] for row in rows]


register(Command(("predict",), "label texts with a trained classifier",
                 (("prediction", PredictConfig),), predict))  # fmt: skip
