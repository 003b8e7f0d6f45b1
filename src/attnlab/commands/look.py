"""`attnlab look RUN --text TEXT [--out page.html] [--png DIR]`: a page of every attention map
the model computes on a text — every layer × head, head averages, rollout, and one head's
token-to-token view — as one self-contained HTML file; `--png` writes the views as images.
An encoder-decoder run (`--target TARGET`, default its own translation) gets a group of maps
per attention: cross-attention, encoder and decoder self-attention (PNGs in a folder each)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ConfigError, device_option, option
from ..device import pick_device
from ..errors import UserError
from ..io import write_text
from ..look.maps import AttentionMaps, attention_maps, translation_maps
from ..look.page import page_data, render
from ..look.png import write_pngs
from ..look.tokens import token_labels
from ..models import Classifier, Seq2Seq
from ..models.stack import reads_segments
from ..runs import RunFolder
from ..translation import encode_checked
from .base import Command, build, register
from .train import describe


@dataclass
class LookConfig:
    run: str = option("", "run folder", positional=True)
    text: str = option("", "the text to look at")
    out: str = option(None, "the page to write (default: RUN/attention.html)", kind=str)
    png: str = option(None, "also write the views as PNG files into this folder", kind=str)
    target: str = option(
        None, "an encoder-decoder run: the target to align with --text, the source (default: "
        "the model's own greedy translation)", kind=str,
    )  # fmt: skip
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
    title = f"{folder.path.name}: {cfg.text[:80]}"
    subtitle = f"{model.title}; " + describe(model).removeprefix("model: ")
    if isinstance(model, Seq2Seq):
        data, views = translation_views(cfg, model, tokenizer, title, subtitle)
    else:
        if cfg.target is not None:
            raise UserError(f"--target: {folder} holds a {model.title}, which reads no target; "
                            "--target is for an encoder-decoder run")  # fmt: skip
        data, views = stack_views(cfg, folder, model, tokenizer, title, subtitle)
    write_text(out, render(data))
    print(out)
    if cfg.png:
        for name, maps, shown in views:
            labels = [q["text"] for q in shown["queries"]], [k["text"] for k in shown["keys"]]
            for path in write_pngs(maps, *labels, Path(cfg.png) / name):
                print(path)
    return 0


Views = list[tuple[str, AttentionMaps, dict]]  # (PNG subfolder, maps, their page data)


def stack_views(cfg: LookConfig, folder: RunFolder, model: torch.nn.Module, tokenizer,
                title: str, subtitle: str) -> tuple[dict, Views]:  # fmt: skip
    """The page of a model of one stack (language model, classifier, masked LM)."""
    device = next(model.parameters()).device
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
    data = page_data(maps, labels, title=title, subtitle=subtitle, prediction=prediction,
                     notes=notes + kind_notes(model, maps))  # fmt: skip
    return data, [("", maps, data)]


def translation_views(cfg: LookConfig, model: Seq2Seq, tokenizer, title: str,
                      subtitle: str) -> tuple[dict, Views]:  # fmt: skip
    """An encoder-decoder's page: a group of maps per attention, the cross-attention first.
    The source is --text and its end mark; the decoder is fed BOS and the target (--target,
    or the model's greedy translation), and its position i writes target token i + 1 (or the
    end mark)."""
    device = next(model.parameters()).device
    context = model.cfg.context
    source = encode_checked(tokenizer, [cfg.text], context, "source", ["--text"])[0].tolist()
    if not source:
        raise UserError(f"--text {cfg.text!r}: the tokenizer makes no tokens of it")
    source.append(model.eos_id)
    if cfg.target is None:
        target = model.translate(torch.tensor([source], device=device), beam=1)[0]
        made = "the model's own greedy translation"
    else:
        target = encode_checked(tokenizer, [cfg.target], context, "target", ["--target"])[0]
        target, made = target.tolist(), "given"
    # A translation that fills the context has no end mark: its last token was written by
    # the last position the decoder has.
    fed = [model.bos_id, *target][:context]
    written = [*target, model.eos_id][: len(fed)]
    maps = translation_maps(model, torch.tensor(source, device=device),
                            torch.tensor(fed, device=device))  # fmt: skip
    special = {model.bos_id: "⟨bos⟩", model.eos_id: "⟨eos⟩"}
    source_labels, fed_labels, written_labels = (
        token_labels(tokenizer, ids, special) for ids in (source, fed, written)
    )
    for label, reader in zip(written_labels, fed_labels, strict=True):
        label["hint"] += f"; written by the position fed {reader['text']}"
    subtitle += f"; target ({made}): {tokenizer.decode(target)[:80]}"
    groups = (
        ("cross", "cross-attention (alignment)", maps.cross, written_labels, source_labels,
         "Cross-attention: a row per target token, at the decoder step that writes it; a "
         "column per source token (Vaswani et al. 2017, §3.2.3; as the alignment figures "
         "of Bahdanau et al. 2015)."),
        ("encoder", "encoder self-attention", maps.encoder, source_labels, None,
         "The encoder's self-attention: every source token reads every other."),
        ("decoder", "decoder self-attention", maps.decoder, fed_labels, None,
         "The decoder's causal self-attention over the tokens it is fed: ⟨bos⟩ and the "
         "target; each reads itself and those before it."),
    )  # fmt: skip
    shown, views = [], []
    for name, what, group, rows, columns, note in groups:
        data = page_data(group, rows, title=title, subtitle=subtitle, notes=[note],
                         key_labels=columns)  # fmt: skip
        shown.append({"id": name, "name": what, **data})
        views.append((name, group, data))
    return {"groups": shown}, views


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
