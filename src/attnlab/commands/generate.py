"""`attnlab generate RUN --prompt TEXT`: sample text from a trained language model, printed
as it is made."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from ..config import device_option, option
from ..device import pick_device
from ..models import LanguageModel
from ..runs import RunFolder
from .base import Command, build, register


@dataclass
class GenerateConfig:
    run: str = option("", "run folder", positional=True)
    prompt: str = option("", "text to continue (default: a new line)")
    tokens: int = option(200, "tokens to generate", at_least=1)
    temperature: float = option(1.0, "sampling temperature; 0 means greedy", at_least=0)
    top_k: int = option(None, "sample among the k most likely tokens only", kind=int, at_least=1)
    top_p: float = option(
        None, "sample among the most likely tokens that make up probability p (nucleus)",
        kind=float, above=0, at_most=1,
    )  # fmt: skip
    seed: int = option(None, "random seed of the sampling (default: a new draw each time)",
                       kind=int, at_least=0)  # fmt: skip
    device: str = device_option()


def generate(args: argparse.Namespace) -> int:
    cfg = build(GenerateConfig, args)
    folder = RunFolder(cfg.run)
    device = pick_device(cfg.device)
    model = folder.load_model(device, expect=LanguageModel)
    tokenizer = folder.tokenizer()
    ids = tokenizer.encode(cfg.prompt or "\n")
    prompt = torch.as_tensor(ids.astype("int64"), device=device)[None]
    print(cfg.prompt, end="", flush=True)
    new: list[int] = []
    shown = 0
    for token in model.stream(
        prompt, cfg.tokens, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
        seed=cfg.seed,
    ):  # fmt: skip
        new.append(int(token[0]))
        text = tokenizer.decode(new)
        # Hold back a character still being completed by the next byte tokens.
        ready = len(text) - 1 if text.endswith("\ufffd") else len(text)
        print(text[shown:ready], end="", flush=True)
        shown = max(shown, ready)
    print(tokenizer.decode(new)[shown:])
    return 0


register(Command(("generate",), "sample text from a trained language model",
                 (("generation", GenerateConfig),), generate))  # fmt: skip
