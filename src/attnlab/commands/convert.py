"""`attnlab convert --from-hf HF_DIR --out RUN`: a HuggingFace GPT-2 or BERT folder into an
attnlab run folder (then `generate`, `eval`, `look` and fine-tuning work on it);
`attnlab convert RUN --to-hf HF_DIR`: the way back, for models GPT-2 or BERT can express."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import FORMAT_VERSION
from ..config import ConfigError, option
from ..errors import UserError
from ..interop.hf import CONFIG, WEIGHTS, from_hf, to_hf
from ..io import write_json
from ..registry import TASKS
from ..runs import RunFolder
from .base import Command, build, register
from .train import describe


@dataclass
class ConvertConfig:
    from_hf: str = option(
        None, "an HF GPT-2 or BERT folder (config.json, model.safetensors, tokenizer)", kind=str
    )
    out: str = option(None, "the run folder --from-hf writes", kind=str)
    to_hf: str = option(None, "the HF folder to write run folder RUN as", kind=str)
    overwrite: bool = option(False, "replace the model the destination folder holds")


def convert(args: argparse.Namespace) -> int:
    cfg = build(ConvertConfig, args)
    run = getattr(args, "run", None)
    if cfg.from_hf is not None and run is None and cfg.to_hf is None:
        if cfg.out is None:
            raise ConfigError("--from-hf needs --out RUN, the run folder to write")
        return read_hf(Path(cfg.from_hf), RunFolder(cfg.out), cfg.overwrite)
    if run is not None and cfg.to_hf is not None and cfg.from_hf is None and cfg.out is None:
        return write_hf(RunFolder(run), Path(cfg.to_hf), cfg.overwrite)
    raise ConfigError("give --from-hf HF_DIR --out RUN, or RUN --to-hf HF_DIR")


def read_hf(source: Path, folder: RunFolder, overwrite: bool) -> int:
    model, tokenizer, notes = from_hf(source)  # checked whole before anything is written
    with folder.claimed(resume=False, overwrite=overwrite):
        model.save(folder.path, tokenizer)
        task = next((t for t in TASKS.values() if model.kind in t.model_kinds), None)
        if task is not None:  # what `eval` reads to know the run's task; no training settings
            settings = {"format_version": FORMAT_VERSION, "task": task.name,
                        "converted_from": str(source)}  # fmt: skip
            write_json(folder.file(folder.SETTINGS), settings)
    print(f"{source} -> {folder}: {model.title}, {tokenizer.kind} tokenizer "
          f"({tokenizer.vocab_size} ids)")  # fmt: skip
    print(describe(model))
    for note in notes:
        print("note:", note)
    return 0


def write_hf(folder: RunFolder, destination: Path, overwrite: bool) -> int:
    taken = [name for name in (CONFIG, WEIGHTS) if (destination / name).exists()]
    if taken and not overwrite:
        raise UserError(f"--to-hf {destination}: already holds a model ({taken[0]}); choose "
                        "another folder or replace it with --overwrite")  # fmt: skip
    model = folder.load_model()
    tokenizer = folder.tokenizer() if folder.file(folder.TOKENIZER_SETTINGS).is_file() else None
    notes = to_hf(model, tokenizer, destination, str(folder))
    print(f"{folder} -> {destination}: {model.title} as HF {model.cfg.depth}-layer model")
    for note in notes:
        print("note:", note)
    return 0


def run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", default=None, metavar="RUN",
                        help="the run folder to write as an HF folder (with --to-hf)")  # fmt: skip


register(Command(("convert",), "HF GPT-2 / BERT folders into run folders and back",
                 (("conversion", ConvertConfig),), convert, extra_flags=run_argument))  # fmt: skip
