"""`attnlab data listops --out DIR`: write Long Range Arena's ListOps as TSV files."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..config import option, seed_option
from ..data.listops import LRA_MAX_LENGTH, max_length_option, size_option, write_listops
from .base import Command, build, register


@dataclass
class ListOpsConfig:
    out: str = option(
        "", "folder for train.tsv, valid.tsv and test.tsv",
        check=lambda out: None if out else "give the folder to write to",
    )  # fmt: skip
    size: int = size_option()
    max_length: int = max_length_option()
    seed: int = seed_option()
    overwrite: bool = option(False, "replace files already there")


def listops(args: argparse.Namespace) -> int:
    cfg = build(ListOpsConfig, args)
    paths = write_listops(cfg.out, cfg.size or None, cfg.max_length or LRA_MAX_LENGTH,
                          seed=cfg.seed, overwrite=cfg.overwrite)  # fmt: skip
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


register(Command(("data", "listops"), "Long Range Arena's ListOps as TSV files",
                 (("listops", ListOpsConfig),), listops))  # fmt: skip
