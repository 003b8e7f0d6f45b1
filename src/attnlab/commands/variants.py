"""`attnlab list`: every registered variant (layer stacks, attention cores, position
encodings, activations, optimisers, schedules, model kinds, tasks) with what it provides or
needs, its options, and the first line of its description."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from ..config import option, options_of
from ..registry import (
    ACTIVATIONS,
    ATTENTION,
    MODELS,
    OPTIMIZERS,
    POSITIONS,
    SCHEDULES,
    STACKS,
    TASKS,
)
from .base import Command, build, print_json, register

TABLES = (
    ("--model", STACKS),
    ("--attention", ATTENTION),
    ("--position", POSITIONS),
    ("--activation", ACTIVATIONS),
    ("--optimizer", OPTIMIZERS),
    ("--schedule", SCHEDULES),
    ("model kinds", MODELS),
    ("attnlab train", TASKS),
)


@dataclass
class ListConfig:
    json: bool = option(False, "print one JSON object on the last line")


def summary(entry: type) -> str:
    doc = (entry.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def describe(name: str, entry: type) -> dict:
    row: dict = {"name": name, "about": summary(entry)}
    for feature in ("provides", "needs"):
        if getattr(entry, feature, None):
            row[feature] = sorted(getattr(entry, feature))
    options = [
        f"--{name}.{f.name.replace('_', '-')} (default {f.default})"
        for f in dataclasses.fields(options_of(entry))
    ]
    if options:
        row["options"] = options
    return row


def list_variants(args: argparse.Namespace) -> int:
    cfg = build(ListConfig, args)
    tables = {title: [describe(n, e) for n, e in registry.items()] for title, registry in TABLES}
    if cfg.json:
        print_json(tables)
        return 0
    for title, rows in tables.items():
        print(title)
        for row in rows:
            extra = "; ".join(
                f"{key} {', '.join(row[key])}" for key in ("provides", "needs") if key in row
            )
            print(f"  {row['name']:<12} {row['about']}" + (f" [{extra}]" if extra else ""))
            for line in row.get("options", []):
                print(f"  {'':<12}   {line}")
    return 0


register(Command(("list",), "every variant attnlab knows, with its options",
                 (("list", ListConfig),), list_variants))  # fmt: skip
