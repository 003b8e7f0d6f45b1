"""`attnlab translate RUN --text T | --file F`: translate texts with a trained
sequence-to-sequence model, by beam search (`--beam 1`: greedy)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, device_option, option
from ..device import pick_device
from ..models import Seq2Seq
from ..runs import RunFolder
from ..translation import encode_checked, translate_ids
from .base import Command, build, print_json, register
from .predict import read_texts


@dataclass
class TranslateConfig:
    run: str = option("", "run folder", positional=True)
    text: str = option(None, "one text", kind=str)
    file: str = option(None, "one text per line, or a CSV / TSV with a source column", kind=str)
    source_column: str = option("source", "the CSV / TSV column holding the texts")
    beam: int = option(None, "beam size, 1 for greedy (default: the run's)", kind=int, at_least=1)
    length_penalty: float = option(
        None, "length penalty α of beam search (default: the run's)", kind=float, at_least=0
    )
    batch_size: int = option(32, "texts translated together", at_least=1)
    device: str = device_option()
    json: bool = option(False, "print one JSON object on the last line")

    def __post_init__(self) -> None:
        if (self.text is None) == (self.file is None):
            raise ConfigError("give exactly one of --text TEXT or --file PATH")


def translate(args: argparse.Namespace) -> int:
    cfg = build(TranslateConfig, args)
    folder = RunFolder(cfg.run)
    model = folder.load_model(pick_device(cfg.device), expect=Seq2Seq)
    tokenizer = folder.tokenizer()
    data = folder.settings().get("data", {}) if folder.file(folder.SETTINGS).is_file() else {}
    beam = cfg.beam or data.get("beam", 4)
    alpha = data.get("length_penalty", 0.6) if cfg.length_penalty is None else cfg.length_penalty
    if cfg.text is not None:
        texts, where = [cfg.text], ["--text"]
    else:
        texts = read_texts(Path(cfg.file), cfg.source_column)
        where = [f"{cfg.file}, text {i + 1}" for i in range(len(texts))]
    sources = encode_checked(tokenizer, texts, model.cfg.context, "source", where)
    ids, scores = translate_ids(model, sources, beam=beam, length_penalty=alpha,
                                batch_size=cfg.batch_size,
                                device=next(model.parameters()).device)  # fmt: skip
    results = []
    for text, out, score in zip(texts, ids, scores, strict=True):
        translation = tokenizer.decode(out)
        results.append({"source": text, "translation": translation, "score": score})
        if not cfg.json:
            print(translation)
    if cfg.json:
        print_json({"translations": results, "beam": beam, "length_penalty": alpha})
    return 0


register(Command(("translate",), "translate texts with a trained sequence-to-sequence model",
                 (("translation", TranslateConfig),), translate))  # fmt: skip
