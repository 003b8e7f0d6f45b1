"""`attnlab bench attention`: time and memory of one attention layer as the sequence grows,
for every registered core."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..bench import LENGTHS, bench_kinds, format_table, run_attention_bench
from ..config import device_option, option
from ..device import pick_device
from .base import Command, build, print_json, register


@dataclass
class BenchConfig:
    lengths: tuple[int, ...] = option(LENGTHS[:-1], "sequence lengths", many=True, at_least=1)
    kinds: tuple[str, ...] = option(
        None, "benchmark kinds, e.g. dense sparse-local (default: all)", kind=str, many=True
    )
    device: str = device_option()
    plot: str = option("attention-bench.png", "where to save the log-log plot")
    json: bool = option(False, "print one JSON object on the last line")


def bench_attention(args: argparse.Namespace) -> int:
    cfg = build(BenchConfig, args)
    kinds = list(cfg.kinds or bench_kinds())
    rows = run_attention_bench(
        list(cfg.lengths), kinds, device=str(pick_device(cfg.device)), plot=Path(cfg.plot),
        log=lambda line: print(line, flush=True),
    )  # fmt: skip
    print(format_table(rows))
    if cfg.json:
        print_json({"rows": rows})
    return 0


register(Command(("bench", "attention"), "one attention layer, forward + backward",
                 (("benchmark", BenchConfig),), bench_attention))  # fmt: skip
