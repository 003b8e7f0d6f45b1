"""Sentence pairs for sequence-to-sequence tasks: the user's TSV, CSV or JSONL files, and
generated tasks (copy, reverse, sort, add) for tests and demonstrations.

A file holds one pair per row. A TSV or CSV file may start with a header naming its columns
(`source`/`target` or the usual names for them, or the ones given with `--source-column` and
`--target-column`); without one, its first two columns are the source and the target. A
JSONL file holds one object per line. Rows whose source is identical form one example with
several references: training sees every pair, evaluation scores each source once, against
all its references.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .tables import read_jsonl

SOURCE_COLUMNS = ("source", "src", "input", "question", "prompt")
TARGET_COLUMNS = ("target", "tgt", "output", "answer", "reference", "translation")
GENERATED = ("copy", "reverse", "sort", "add")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class Pairs:
    """Sources, each with one or more references; `lines[i]` is the line of source i's first
    row in `source` (for messages), or None for generated data."""

    sources: list[str]
    references: list[list[str]]
    source: str = "<memory>"
    lines: list[int] | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def where(self, i: int) -> str:
        return f"{self.source}, line {self.lines[i]}" if self.lines else f"{self.source}, #{i}"

    def pairs(self) -> list[tuple[int, str]]:
        """(example index, target) of every pair: what training sees."""
        return [(i, ref) for i, refs in enumerate(self.references) for ref in refs]

    def subset(self, indices: list[int]) -> Pairs:
        return Pairs(
            [self.sources[i] for i in indices],
            [self.references[i] for i in indices],
            self.source,
            [self.lines[i] for i in indices] if self.lines else None,
        )


def group(rows: list[tuple[int, str, str]], source: str) -> Pairs:
    """(line, source, target) rows as examples: identical sources become one, in the order
    they first appear."""
    index: dict[str, int] = {}
    pairs = Pairs([], [], source, [])
    for line, src, tgt in rows:
        if src not in index:
            index[src] = len(pairs.sources)
            pairs.sources.append(src)
            pairs.references.append([])
            pairs.lines.append(line)
        pairs.references[index[src]].append(tgt)
    return pairs


def read_delimited(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-empty row of a TSV (tab-separated, no quoting, so
    quotes inside sentences stay as they are) or CSV file."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if path.suffix.lower() == ".tsv":
                lines = f.read().splitlines()
                return [(n, line.split("\t")) for n, line in enumerate(lines, 1) if line.strip()]
            csv.field_size_limit(1 << 30)
            reader = csv.reader(f, strict=True)
            return [(reader.line_num, row) for row in reader if row]
    except csv.Error as error:
        raise UserError(f"{path}: malformed CSV ({error})") from error


def find_column(
    wanted: str, guesses: tuple[str, ...], header: list[str], what: str, path: Path
) -> int | None:
    """Index of the `what` column in a header row, or None if the row is no header."""
    if wanted:
        if wanted in header:
            return header.index(wanted)
        raise UserError(f"{path}: no {what} column {wanted!r} in the first row {header}; "
                        f"name one of its columns with --{what}-column")  # fmt: skip
    lower = [h.strip().lower() for h in header]
    return next((lower.index(g) for g in guesses if g in lower), None)


def read_pairs(path: str | Path, source_column: str = "", target_column: str = "") -> Pairs:
    """The sentence pairs of a TSV, CSV or JSONL file (see the module's description)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            with open(path, encoding="utf-8-sig") as f:
                header, objects = read_jsonl(path, f)
            rows = [(n, [obj.get(c) for c in header]) for n, obj in objects]
        else:
            rows = read_delimited(path)
            header = rows[0][1] if rows else []
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error}); save it as UTF-8") from error
    if not rows:
        raise UserError(f"{path}: no sentence pairs (the file is empty)")
    s = find_column(source_column, SOURCE_COLUMNS, header, "source", path)
    t = find_column(target_column, TARGET_COLUMNS, header, "target", path)
    is_json = path.suffix.lower() in (".jsonl", ".ndjson", ".json")
    if (s is None) != (t is None) or (is_json and s is None):
        raise UserError(f"{path}: cannot tell the source and target columns among {header}; "
                        "name them with --source-column and --target-column")  # fmt: skip
    if s is None:
        s, t = 0, 1  # no header: the first two columns
    elif not is_json:
        rows = rows[1:]
    checked = [(n, *pair_of(fields, s, t, path, n)) for n, fields in rows]
    if not checked:
        raise UserError(f"{path}: no sentence pairs (only a header)")
    return group(checked, str(path))


def pair_of(fields: list, s: int, t: int, path: Path, line: int) -> tuple[str, str]:
    if len(fields) < 2:
        raise UserError(f"{path}, line {line}: one column; a pair needs a source and a target "
                        "(separated by a tab in TSV, a comma in CSV)")  # fmt: skip
    if max(s, t) >= len(fields):
        raise UserError(f"{path}, line {line}: {len(fields)} fields, fewer than the header's")
    src, tgt = fields[s], fields[t]
    for text, what in ((src, "source"), (tgt, "target")):
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{path}, line {line}: empty or missing {what}")
    return src, tgt


def generated_example(task: str, rng: random.Random, min_length: int, max_length: int):
    """One (source, target) of a generated task: `copy`, `reverse` or `sort` a string of
    min_length … max_length letters, or `add` two numbers of that many digits at most."""
    if task == "add":
        a, b = (rng.randrange(10 ** rng.randint(min_length, max_length)) for _ in range(2))
        return f"{a}+{b}", str(a + b)
    text = "".join(rng.choices(LETTERS, k=rng.randint(min_length, max_length)))
    target = {"copy": text, "reverse": text[::-1], "sort": "".join(sorted(text))}[task]
    return text, target


def generate_task(
    task: str, sizes: tuple[int, int, int], min_length: int, max_length: int, seed: int = 0
) -> dict[str, Pairs]:
    """Train, valid and test splits of a generated task, of `sizes` examples. A source is in
    one split only, so valid and test are held out (short sources, of which there are few,
    go to training first)."""
    if task not in GENERATED:
        raise UserError(f"--data task:{task}: no such task; choose one of "
                        + ", ".join(f"task:{t}" for t in GENERATED))  # fmt: skip
    if not 1 <= min_length <= max_length:
        raise UserError(f"task lengths must satisfy 1 <= --min-length <= --max-length, "
                        f"got {min_length} and {max_length}")  # fmt: skip
    rng = random.Random(seed)
    seen: set[str] = set()
    splits = {}
    for name, size in zip(("train", "valid", "test"), sizes, strict=True):
        rows, tries = [], 0
        while len(rows) < size and tries < 20 * size:
            tries += 1
            src, tgt = generated_example(task, rng, min_length, max_length)
            if src not in seen:
                seen.add(src)
                rows.append((len(rows) + 1, src, tgt))
        if not rows:
            raise UserError(f"task:{task}: no new examples left for the {name} split; "
                            "allow longer ones with --max-length")  # fmt: skip
        splits[name] = group(rows, f"task:{task} [{name}]")
        splits[name].lines = None
    return splits
