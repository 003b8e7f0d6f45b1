"""Labelled texts for classification: the user's own CSV, TSV or JSONL files, class names, label
ids and a stratified validation split. IMDb and ListOps arrive in the same shape.

Every problem with a file is a `UserError` that names the file and, where there is one, the
line: a missing column (with the columns that are there), an empty text, a malformed row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from ..errors import UserError

TEXT_COLUMNS = ("text", "sentence", "review", "content", "document", "body", "source", "input")
LABEL_COLUMNS = ("label", "labels", "class", "category", "sentiment", "target", "y", "output")
DEFAULT_VALID_FRACTION = 0.1


@dataclass
class LabeledTexts:
    """Texts and their label strings; `lines[i]` is where example i sits in `source` (for
    messages), or None for generated data."""

    texts: list[str]
    labels: list[str]
    source: str = "<memory>"
    lines: list[int] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, i: int) -> str:
        return f"{self.source}, line {self.lines[i]}" if self.lines else f"{self.source}, #{i}"

    def subset(self, indices: Sequence[int]) -> LabeledTexts:
        return LabeledTexts(
            [self.texts[i] for i in indices],
            [self.labels[i] for i in indices],
            self.source,
            [self.lines[i] for i in indices] if self.lines else None,
        )


@dataclass
class ClassificationData:
    """Train, validation and (optionally) test texts, and the class names; class i is
    `classes[i]`."""

    train: LabeledTexts
    valid: LabeledTexts
    test: LabeledTexts | None
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.classes = self.classes or class_names(self.train)
        for split in (self.valid, self.test):
            if split is not None:
                label_ids(split, self.classes)  # fail now on labels training never saw

    def split(self, name: str) -> LabeledTexts:
        """ "train", "valid" or "test" by name."""
        part = {"train": self.train, "valid": self.valid, "test": self.test}.get(name)
        if part is None:
            raise UserError(f"no {name!r} split in this data (there are train, valid, test)")
        return part


def label_order(label: str) -> tuple:
    """Numbers in numeric order ("2" before "10"), then other labels alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def class_names(data: LabeledTexts) -> list[str]:
    """The distinct labels of `data`, sorted; a classifier needs at least two."""
    classes = sorted(set(data.labels), key=label_order)
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise UserError(f"{data.source}: a classifier needs at least 2 labels, found {found}")
    return classes


def label_ids(data: LabeledTexts, classes: list[str]) -> np.ndarray:
    """The class index of every example; a label not among `classes` is an error naming it."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = [i for i, label in enumerate(data.labels) if label not in index]
    if unknown:
        names = sorted({data.labels[i] for i in unknown}, key=label_order)
        raise UserError(
            f"{data.where(unknown[0])}: label {data.labels[unknown[0]]!r} was never seen in "
            f"training ({len(unknown)} examples with unseen labels {names[:5]}; the classes are "
            f"{classes[:10]})"
        )
    return np.array([index[label] for label in data.labels], dtype=np.int64)


def pick_column(
    wanted: str | None, guesses: tuple[str, ...], columns: list[str], what: str, path: Path
) -> str:
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise UserError(
            f"{path}: no {what} column {wanted!r}; the columns are {columns}; "
            f"choose one with --{what}-column"
        )
    lower = {c.strip().lower(): c for c in columns}
    for guess in guesses:
        if guess in lower:
            return lower[guess]
    raise UserError(
        f"{path}: cannot tell which column holds the {what} (looked for {', '.join(guesses)}); "
        f"the columns are {columns}; name it with --{what}-column"
    )


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and (line number, row) pairs of a CSV, TSV or JSONL file."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
                return read_jsonl(path, f)
            return read_csv(path, f, "\t" if path.suffix.lower() == ".tsv" else ",")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error}); save it as UTF-8") from error


def read_jsonl(path: Path, f: TextIO) -> tuple[list[str], list[tuple[int, dict]]]:
    rows, columns = [], {}
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}, line {number}: not valid JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise UserError(f"{path}, line {number}: expected a JSON object per line")
        columns.update(dict.fromkeys(row))
        rows.append((number, row))
    return list(columns), rows


def read_csv(path: Path, f: TextIO, delimiter: str) -> tuple[list[str], list[tuple[int, dict]]]:
    # Review-length fields pass the csv module's default 128 KiB limit.
    csv.field_size_limit(1 << 30)
    reader = csv.reader(f, delimiter=delimiter, strict=True)
    rows = []
    try:
        header = next(reader, None)
        if header is None:
            return [], []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise UserError(
                    f"{path}, line {reader.line_num}: {len(row)} fields where the header has "
                    f"{len(header)}; quote fields that contain {delimiter!r} or line breaks"
                )
            rows.append((reader.line_num, dict(zip(header, row, strict=True))))
    except csv.Error as error:
        raise UserError(f"{path}, line {reader.line_num}: malformed row ({error})") from error
    return header, rows


def read_table(
    path: str | Path, text_column: str | None = None, label_column: str | None = None
) -> LabeledTexts:
    """Texts and label strings from a CSV (`.csv`), TSV (`.tsv`) or JSON-lines (`.jsonl`) file
    with a header. Columns default to `text` and `label`, else the usual names for them."""
    path = Path(path)
    columns, rows = read_rows(path)
    if not rows:
        raise UserError(f"{path}: no examples (the file is empty or has only a header)")
    text_column = pick_column(text_column, TEXT_COLUMNS, columns, "text", path)
    label_column = pick_column(label_column, LABEL_COLUMNS, columns, "label", path)
    texts, labels, lines = [], [], []
    for number, row in rows:
        text, label = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{path}, line {number}: empty or missing text in {text_column!r}")
        if label is None or isinstance(label, (dict, list)) or not str(label).strip():
            raise UserError(f"{path}, line {number}: empty or missing label in {label_column!r}")
        texts.append(text)
        labels.append(str(label).strip())
        lines.append(number)
    return LabeledTexts(texts, labels, str(path), lines)


def stratified_split(
    data: LabeledTexts, fraction: float = DEFAULT_VALID_FRACTION, seed: int = 0
) -> tuple[LabeledTexts, LabeledTexts]:
    """(rest, held out): about `fraction` of each class held out, at least one example of
    every class that has two, chosen by `seed`; both keep the file's order."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    labels = np.array(data.labels, dtype=object)
    held = []
    for label in sorted(set(data.labels), key=label_order):
        members = np.flatnonzero(labels == label)
        count = min(max(round(fraction * len(members)), 1), len(members) - 1)
        held.extend(rng.permutation(members)[:count].tolist())
    held_set = set(held)
    rest = [i for i in range(len(data)) if i not in held_set]
    return data.subset(rest), data.subset(sorted(held))


def load_tables(
    train: str | Path,
    valid: str | Path | None = None,
    test: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    seed: int = 0,
) -> ClassificationData:
    """The user's files as train/valid/test; without a validation file, `valid_fraction` of the
    training file (stratified, by `seed`) is held out."""
    train_data = read_table(train, text_column, label_column)
    classes = class_names(train_data)
    if valid is None:
        train_data, valid_data = stratified_split(train_data, valid_fraction, seed)
    else:
        valid_data = read_table(valid, text_column, label_column)
    test_data = read_table(test, text_column, label_column) if test is not None else None
    return ClassificationData(train_data, valid_data, test_data, classes)
