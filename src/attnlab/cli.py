"""The command line: `attnlab train | generate | eval | bench ...`.

Model and training flags are generated from the fields of `ModelConfig` and `TrainConfig`,
so every setting is a flag with its help text and allowed values, and a new field is a new
flag. Flag values left out fall back to the preset, then to the field's default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from .config import CLASSIFY_PRESETS, PRESETS, ClassifyConfig, ModelConfig, TrainConfig
from .errors import UserError


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One flag per field of `cls`; a flag left out is absent from the parsed namespace."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        if isinstance(f.default, bool):
            group.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            group.add_argument(
                flag,
                type=type(f.default),
                choices=f.metadata.get("choices"),
                default=argparse.SUPPRESS,
                help=help_text,
                metavar=f.name.upper() if not f.metadata.get("choices") else None,
            )


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` that were given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnlab", description="Build, train, compare and look inside transformers."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model").add_subparsers(
        dest="task", required=True
    )
    for task, presets, what in (
        ("lm", PRESETS, "a language model on text"),
        ("classify", CLASSIFY_PRESETS, "a text classifier on labelled texts"),
    ):
        sub = train.add_parser(task, help=f"train {what}")
        sub.add_argument("--preset", choices=sorted(presets), help="model and training settings")
        sub.add_argument("--out", type=Path, help=f"run folder (default: runs/<preset or {task}>)")
        sub.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR")
        sub.add_argument("--overwrite", action="store_true", help="replace a run in --out")
        add_dataclass_flags(sub, TrainConfig, "training")
        if task == "classify":
            add_dataclass_flags(sub, ClassifyConfig, "classification")
        add_dataclass_flags(sub, ModelConfig, "model")

    generate = commands.add_parser("generate", help="sample text from a trained language model")
    generate.add_argument("run", type=Path, help="run folder")
    generate.add_argument("--prompt", default="", help="text to continue")
    generate.add_argument("--tokens", type=int, default=200, help="tokens to generate")
    generate.add_argument("--temperature", type=float, default=1.0, help="0 means greedy")
    generate.add_argument("--top-k", type=int, default=None)
    generate.add_argument("--top-p", type=float, default=None)
    generate.add_argument("--seed", type=int, default=None)
    generate.add_argument("--device", default="auto")

    evaluate = commands.add_parser("eval", help="score a trained model on held-out data")
    evaluate.add_argument("run", type=Path, help="run folder")
    evaluate.add_argument("--data", help="text to score (default: the run's own data)")
    evaluate.add_argument("--split", choices=("valid", "test", "all"), default="test")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--memory", type=int, help="Transformer-XL: memory length to use")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object last")

    predict = commands.add_parser("predict", help="label texts with a trained classifier")
    predict.add_argument("run", type=Path, help="run folder")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="one text")
    source.add_argument("--file", type=Path, help="one text per line, or a CSV / TSV")
    predict.add_argument("--text-column", help="the CSV column holding the texts (default: text)")
    predict.add_argument("--device", default="auto")
    predict.add_argument("--json", action="store_true", help="print one JSON object last")

    data = commands.add_parser("data", help="write a data set to files").add_subparsers(
        dest="dataset", required=True
    )
    listops = data.add_parser("listops", help="Long Range Arena's ListOps as TSV files")
    listops.add_argument("--out", type=Path, required=True, help="folder for train/valid/test.tsv")
    listops.add_argument("--size", type=int, default=0, help="examples in all (0: 100,000)")
    listops.add_argument("--max-length", type=int, default=0, help="longest example (0: 2,000)")
    listops.add_argument("--seed", type=int, default=0)

    bench = commands.add_parser("bench", help="measure speed and memory").add_subparsers(
        dest="what", required=True
    )
    attention = bench.add_parser("attention", help="one attention layer, forward + backward")
    attention.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    attention.add_argument("--kinds", nargs="+", default=None, help="default: all")
    attention.add_argument("--device", default="cpu")
    attention.add_argument("--plot", type=Path, default=Path("attention-bench.png"))
    attention.add_argument("--json", action="store_true", help="print one JSON object last")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from . import commands

        return commands.run(args)
    except UserError as error:
        print(f"attnlab: error: {error}", file=sys.stderr)
        return 2


def print_json(result: dict[str, Any]) -> None:
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
