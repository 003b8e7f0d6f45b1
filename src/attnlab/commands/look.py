"""`attnlab look RUN --text TEXT [--out page.html] [--png DIR]`: a page of every attention map
the model computes on a text — every layer × head, head averages, rollout, and one head's
token-to-token view — as one self-contained HTML file; `--png` writes the views as images."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ConfigError, device_option, option
from ..device import pick_device
from ..errors import UserError
from ..io import write_text
from ..look.maps import attention_maps
from ..look.page import page_data, render
from ..look.png import write_pngs
from ..look.tokens import token_labels
from ..models import Classifier
from ..models.stack import reads_segments
from ..runs import RunFolder
from .base import Command, build, register
from .train import describe


@dataclass
class LookConfig:
    run: str = option("", "run folder", positional=True)
    text: str = option("", "the text to look at")
    out: str = option(None, "the page to write (default: RUN/attention.html)", kind=str)
    png: str = option(None, "also write the views as PNG files into this folder", kind=str)
    device: str = device_option()

    def __post_init__(self) -> None:
        if not self.text:
            raise ConfigError("--text: give the text to look at")


def most_tokens(model: torch.nn.Module) -> int:
    """How many tokens one look takes: a context, or a context and a memory (Transformer-XL,
    whose page shows the last segment and the memory before it)."""
    cfg = model.cfg
    if reads_segments(cfg.model):
        return cfg.context + cfg.options_for(type(model.stack)).memory
    return cfg.context


def frame(model: torch.nn.Module, tokenizer) -> tuple[list[int], list[int]]:
    """The tokens a masked language model's texts start and end with, as in its training:
    its `[CLS]` token and, where the vocabulary has one, `[SEP]` (BERT)."""
    cls_id = getattr(model, "cls_id", None)
    if cls_id is None:
        return [], []
    sep = getattr(tokenizer, "hf", None) and tokenizer.hf.token_to_id("[SEP]")
    return [cls_id], [] if sep is None else [sep]


def look(args: argparse.Namespace) -> int:
    cfg = build(LookConfig, args)
    folder = RunFolder(cfg.run)
    out = Path(cfg.out) if cfg.out else folder.file(folder.PAGE)
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the page's file name")
    device = pick_device(cfg.device)
    model = folder.load_model(device)
    tokenizer = folder.tokenizer()
    ids = tokenizer.encode(cfg.text).tolist()
    if not ids:
        raise UserError(f"--text {cfg.text!r}: the tokenizer makes no tokens of it")
    start, end = frame(model, tokenizer)
    limit = most_tokens(model) - len(start) - len(end)
    notes = []
    if len(ids) > limit:
        notes.append(f"The text is cut to its first {limit} of {len(ids)} tokens.")
        ids = ids[:limit]
    ids = start + ids + end
    maps = attention_maps(model, torch.tensor(ids, device=device))
    labels = token_labels(tokenizer, ids)
    prediction = None
    if isinstance(model, Classifier):
        probabilities = maps.output.softmax(-1)[0].tolist()
        prediction = sorted(zip(folder.labels(), probabilities, strict=True), key=lambda x: -x[1])
    data = page_data(
        maps, labels, title=f"{folder.path.name}: {cfg.text[:80]}",
        subtitle=f"{model.title}; " + describe(model).removeprefix("model: "),
        prediction=prediction, notes=notes + kind_notes(model, maps),
    )  # fmt: skip
    write_text(out, render(data))
    print(out)
    if cfg.png:
        names = [label["text"] for label in data["queries"]], [k["text"] for k in data["keys"]]
        for path in write_pngs(maps, *names, cfg.png):
            print(path)
    return 0


def kind_notes(model: torch.nn.Module, maps) -> list[str]:
    """What a reader of the page should know about this kind of model."""
    notes = []
    if maps.ponder is not None or maps.names[0].startswith("step"):
        notes.append("Universal Transformer: one shared block, applied once per step; a map "
                     "per step.")  # fmt: skip
    if maps.memory:
        notes.append(
            f"Transformer-XL: the last segment of {maps.weights[0].shape[2]} tokens attends "
            f"over {maps.memory} remembered positions of earlier text (cream) and itself."
        )
    if maps.exact is not None:
        notes.append("Nyström: the maps are Ŝ, the product of the three kernels; the depthwise "
                     "convolution on the values adds to Ŝ·V and is no part of Ŝ.")  # fmt: skip
    if maps.attribution is not None:
        notes.append(f"Attribution: attention rollout from what the {model.pooling} pooling "
                     "reads back to each input position.")  # fmt: skip
    return notes


register(Command(("look",), "write a page of a model's attention on a text",
                 (("look", LookConfig),), look))  # fmt: skip
