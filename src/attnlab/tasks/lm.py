"""Language modelling: predict each next token of a text; judged in bits per byte."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..checkpoint import unwrap
from ..config import ModelConfig, TrainConfig
from ..data.encoded import encode_cached
from ..data.text import TextSplits, load_text
from ..data.tokenizers import Tokenizer, train_tokenizer
from ..data.windows import RandomWindows, Streams
from ..errors import UserError
from ..evaluate import bits_per_byte

SPLITS = ("train", "valid", "test")


@dataclass
class EncodedText:
    """A corpus's splits as token arrays, with the bytes each split's tokens cover."""

    source: str
    tokens: dict[str, np.ndarray]
    n_bytes: dict[str, int]

    def bytes_per_token(self, split: str) -> float:
        return self.n_bytes[split] / max(1, len(self.tokens[split]))


def encode_splits(splits: TextSplits, tokenizer: Tokenizer, names=SPLITS) -> EncodedText:
    tokens = {name: encode_cached(tokenizer, splits[name]) for name in names}
    return EncodedText(splits.source, tokens, {name: len(splits[name]) for name in names})


def prepare_text(
    cfg: TrainConfig, vocab_size: int, tokenizer: Tokenizer | None = None
) -> tuple[EncodedText, Tokenizer]:
    """Read and split `cfg.data`; train a tokenizer on its training split unless one is given
    (a resumed run reuses its own); encode every split."""
    splits = load_text(cfg.data, cfg.glob, cfg.valid_fraction, cfg.test_fraction)
    if tokenizer is None:
        if cfg.tokenizer == "bytes":
            tokenizer = train_tokenizer("bytes", [])
        else:
            tokenizer = train_tokenizer(
                cfg.tokenizer, [splits.train.decode("utf-8", "replace")], vocab_size
            )
    return encode_splits(splits, tokenizer), tokenizer


def check_long_enough(text: EncodedText, context: int, where: str) -> None:
    for split in SPLITS:
        if len(text.tokens[split]) < context + 1:
            raise UserError(
                f"{where}: the {split} split holds {len(text.tokens[split])} tokens, fewer than "
                f"one context window of {context + 1}; give more text or a smaller --context"
            )


class LanguageModelTask:
    """Random windows (or, for Transformer-XL, ordered streams with memory) of the training
    split; validation in bits per byte."""

    plot = {"train": "train_bpb", "valid": "valid_bpb"}
    held_out = ("valid", "test")

    def __init__(
        self,
        text: EncodedText,
        model_cfg: ModelConfig,
        cfg: TrainConfig,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
    ):
        self.text, self.cfg, self.device = text, cfg, device
        self.recurrent = model_cfg.model == "xl"
        train = text.tokens["train"]
        if self.recurrent:
            self.batches = Streams(train, model_cfg.context, cfg.batch_size, rank, world)
        else:
            self.batches = RandomWindows(
                train, model_cfg.context, cfg.batch_size, cfg.seed, rank, world
            )
        self.memory = None  # Transformer-XL's state, carried from segment to segment
        self.saved_memory: dict[str, Tensor] = {}  # from a checkpoint, until the model is seen

    def next_batch(self) -> tuple:
        x, y, *restart = next(self.batches)
        return (
            x.to(self.device, non_blocking=True),
            y.to(self.device, non_blocking=True),
            *restart,
        )

    def tokens_in(self, batch: tuple) -> int:
        return batch[0].numel()

    def loss(self, objective: nn.Module, batch: tuple) -> tuple[Tensor, dict[str, float]]:
        if not self.recurrent:
            return objective(*batch)
        x, y, restart = batch
        if restart or self.memory is None:
            self.memory = unwrap_model(objective).new_state()
            if not restart:
                self.restore_memory()
        return objective(x, y, state=self.memory)

    def restore_memory(self) -> None:
        for i, layer in enumerate(self.memory):
            if f"memory.{i}" in self.saved_memory:
                layer.states = self.saved_memory[f"memory.{i}"].to(self.device)
                layer.seen = int(self.saved_memory[f"seen.{i}"])
        self.saved_memory = {}

    def train_metrics(self, loss: float) -> dict[str, float]:
        return {"train_bpb": loss / math.log(2) / self.text.bytes_per_token("train")}

    def evaluate(self, model: nn.Module, split: str, quick: bool) -> dict[str, float]:
        tokens = self.text.tokens[split]
        if quick and self.cfg.eval_bytes:
            tokens = tokens[: int(self.cfg.eval_bytes / self.text.bytes_per_token(split)) + 1]
        result = bits_per_byte(
            model,
            tokens,
            self.text.bytes_per_token(split),
            batch_size=self.cfg.batch_size,
            device=self.device,
        )
        return {f"{split}_bpb": result["bits_per_byte"], f"{split}_bytes": result["bytes"]}

    def state_dict(self) -> dict[str, Tensor]:
        state = self.batches.state_dict()
        for i, layer in enumerate(self.memory or []):
            if layer.states is not None:
                state[f"memory.{i}"] = layer.states
                state[f"seen.{i}"] = torch.tensor(layer.seen)
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.batches.load_state_dict(state)
        self.saved_memory = {k: v for k, v in state.items() if k.startswith(("memory.", "seen."))}


def unwrap_model(objective: nn.Module) -> nn.Module:
    """The model inside an Objective, however it is wrapped (DDP, torch.compile)."""
    return unwrap(objective).model
