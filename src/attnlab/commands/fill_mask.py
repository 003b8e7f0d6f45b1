"""`attnlab fill-mask RUN --text "the [MASK] is ..."`: a masked language model's guesses for the
tokens behind each `[MASK]`, with their probabilities (Devlin et al. 2019, the cloze task).

Every mark is guessed in one forward pass, each independently of the others' guesses, as BERT
predicts them in training. Special tokens are never offered as guesses, nor ids the tokenizer
has no text for."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import torch

from ..config import device_option, option
from ..data.masking import MASK_TEXT, Masking
from ..device import pick_device
from ..errors import UserError
from ..models import MaskedLM
from ..runs import RunFolder
from .base import Command, build, print_json, register


@dataclass
class FillMaskConfig:
    run: str = option("", "run folder of a masked language model", positional=True)
    text: str = option("", f"a text with one or more {MASK_TEXT} where tokens are to be guessed")
    top: int = option(5, "candidates shown for each mark", at_least=1)
    device: str = device_option()
    json: bool = option(False, "print one JSON object on the last line")


@torch.no_grad()
def guesses(model: MaskedLM, masking: Masking, text: str, top: int) -> list[list[dict[str, Any]]]:
    """For each mark in `text`, the `top` most likely tokens: id, text and probability."""
    ids, positions = masking.encode_marked(text)
    if not len(positions):
        raise UserError(f"--text: no {MASK_TEXT} in {text!r}; write {MASK_TEXT} where a token "
                        "is to be guessed")  # fmt: skip
    if len(ids) > model.cfg.context:
        raise UserError(f"--text: {len(ids)} tokens with [CLS] and [SEP]; the model reads at most "
                        f"{model.cfg.context}")  # fmt: skip
    device = next(model.parameters()).device
    hidden = model.encode(ids[None].to(device))[0, positions.to(device)]  # (m, width)
    # ids past the tokenizer's (a vocabulary padded, as converted HF models' often is) have no
    # text, so they are never offered either
    never = torch.ones(model.cfg.vocab_size, dtype=torch.bool)
    never[: len(masking.special)] = masking.special
    logits = model.head(hidden).float().masked_fill(never.to(device), float("-inf"))
    probs, best = logits.softmax(dim=-1).topk(min(top, len(masking.ordinary)), dim=-1)
    decode = masking.tokenizer.decode
    return [
        [{"id": i, "token": decode([i]), "probability": p}
         for i, p in zip(row_ids.tolist(), row_probs.tolist(), strict=True)]
        for row_ids, row_probs in zip(best, probs, strict=True)
    ]  # fmt: skip


def fill_mask(args: argparse.Namespace) -> int:
    cfg = build(FillMaskConfig, args)
    folder = RunFolder(cfg.run)
    model = folder.load_model(pick_device(cfg.device), expect=MaskedLM)
    masking = Masking(folder.tokenizer())
    found = guesses(model, masking, cfg.text, cfg.top)
    filled = cfg.text
    for candidates in found:
        filled = filled.replace(MASK_TEXT, candidates[0]["token"], 1)
    if cfg.json:
        print_json({"text": cfg.text, "filled": filled, "masks": found})
        return 0
    for n, candidates in enumerate(found, 1):
        print(f"{MASK_TEXT} {n}:")
        for c in candidates:
            print(f"  {c['probability']:.4f}  {c['token']!r}")
    print(f"best: {filled}")
    return 0


register(Command(("fill-mask",), "guess the tokens behind [MASK] with a masked language model",
                 (("fill-mask", FillMaskConfig),), fill_mask))  # fmt: skip
