"""Language modelling: predict each next token of a text; judged in bits per byte."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..checkpoint import unwrap
from ..config import ModelConfig, TrainConfig, from_settings, option
from ..data.encoded import encode_cached, spread_sample, train_cached
from ..data.text import TextSplits, load_text
from ..data.tokenizers import DEFAULT_VOCAB, Tokenizer, train_tokenizer
from ..data.windows import RandomWindows, Streams, warmed_up
from ..errors import UserError
from ..evaluate import bits_per_byte
from ..models import LanguageModel
from ..models.stack import reads_segments
from ..registry import TASKS
from ..runs import RunFolder
from .base import EvalConfig, Setup, Task

SPLITS = ("train", "valid", "test")
SAMPLE_PROMPT = 64  # tokens of the test split the end-of-training sample continues
# Bytes of the training split a tokenizer learns from, spread over all of it: 2,048 BPE merges
# learned from 4 MB of the default corpus give its test split 3.085 bytes per token, against
# 3.093 from all 10 MB, in about half the time.
TOKENIZER_SAMPLE = 4_000_000


@dataclass
class TextData:
    """Where the text comes from, how it becomes tokens and how it is split."""

    data: str = option("stdlib", "a text file, a folder of text files, 'stdlib' or 'enwik8'")
    glob: str = option(
        "**/*", "which files of a --data folder to read",
        check=lambda pattern: None if pattern.strip() else "give a pattern, e.g. '**/*.py'",
    )  # fmt: skip
    tokenizer: str = option(
        "bytes", "bytes, or byte-level BPE trained on the training split", choices=("bytes", "bpe")
    )
    vocab_size: int = option(
        0, f"tokenizer vocabulary (0: the kind's default, bpe {DEFAULT_VOCAB['bpe']})", at_least=0
    )
    valid_fraction: float = option(
        0.05, "share of a single text held out for validation", at_least=0, below=0.5
    )
    test_fraction: float = option(
        0.05, "share of a single text held out for testing", at_least=0, below=0.5
    )
    eval_bytes: int = option(65536, "validation bytes scored at each check (0: all)", at_least=0)
    sample_tokens: int = option(300, "tokens sampled at the end of training", at_least=0)
    context_warmup: float = option(
        0.0, "sequence-length warm-up: share of the budget over which the training windows "
        "grow from context/8 tokens to the whole context (0: off)", at_least=0, at_most=1,
    )  # fmt: skip
    batch_warmup: float = option(
        0.0, "batch-size ramp: share of the budget over which the batch grows from 1/8 of "
        "--batch-size to all of it (0: off)", at_least=0, at_most=1,
    )  # fmt: skip


@dataclass
class TextEval:
    """`attnlab eval` options of a language model."""

    memory: int = option(
        None, "Transformer-XL: memory length to evaluate with", kind=int, at_least=0
    )


# A preset fills in model, training and data settings; flags given on the command line win.
# The recipe of the CPU presets (benchmarks/recipe.py measures each piece on and off). ReLU²,
# an untied output layer and a logit soft-cap were in it and lost at both budgets: together
# they cost 0.10 test bits per byte at the small one; the value residual took 0.11 off there,
# Primer's convolution over q, k and v about 0.2 at the tiny one (benchmarks/RESULTS.md).
RECIPE_MODEL = dict(position="rope", qk_norm=True, zero_init=True, bias=False,
                    value_residual=True, qkv_conv=3)  # fmt: skip
# With Muon, --lr is AdamW's rate for what Muon does not move (the embedding, which is also the
# output layer, and the gains): six times the 4e-3 it had, the best of ×1-×12 at the tiny budget.
RECIPE_TRAIN = dict(optimizer="muon", lr=2.4e-2, schedule="linear", min_lr=0.0)
RECIPE_DATA = dict(tokenizer="bpe", vocab_size=2048)

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # About 3.5 minutes in all on a 2-core CPU (training, then the scores and a sample).
    "tiny": {
        "model": dict(context=128, depth=4, width=128, heads=4, **RECIPE_MODEL),
        "train": dict(
            minutes=2.5, batch_size=16, warmup=30, eval_every=200, **RECIPE_TRAIN
        ),  # fmt: skip
        "data": dict(RECIPE_DATA),
    },
    # Fifteen minutes in all, even on one core: the tiny model trained longer. At this budget it
    # beats wider and deeper ones (6 x 192 with context 256 reached 1.68 test bits per byte at
    # 2 threads, this shape 1.51 at 1 thread with the recipe of then; with today's, 1.27, below
    # xz -9's 1.60; benchmarks/RESULTS.md).
    "small": {
        "model": dict(context=128, depth=4, width=128, heads=4, **RECIPE_MODEL),
        "train": dict(
            minutes=14.0, batch_size=16, warmup=30, eval_every=500, **RECIPE_TRAIN
        ),  # fmt: skip
        "data": dict(RECIPE_DATA),
    },
    # The model of "Transformers from scratch" behind its 1.343 bits per byte on enwik8:
    # 12 blocks, width 256, context 256, batch 32, about 170,000 batches.
    "enwik8-seed": {
        "model": dict(context=256, depth=12, width=256, heads=8),
        "train": dict(
            steps=170_000,
            batch_size=32,
            lr=3e-4,
            min_lr=3e-5,
            warmup=5000,
            eval_every=2000,
            save_every=2000,
        ),
        "data": dict(data="enwik8"),
    },
}


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


def read_splits(data: TextData, source: str | None = None) -> TextSplits:
    return load_text(source or data.data, data.glob, data.valid_fraction, data.test_fraction)


def check_long_enough(text: EncodedText, context: int, where: str) -> None:
    for split in SPLITS:
        if len(text.tokens[split]) < context + 1:
            raise UserError(
                f"{where}: the {split} split holds {len(text.tokens[split])} tokens, fewer than "
                f"one context window of {context + 1}; give more text or a smaller --context"
            )


@TASKS.register("lm")
class LanguageModelTask(Task):
    """Next-token prediction on text, scored in bits per byte.

    Trains on random windows (or, for Transformer-XL, ordered streams with memory) of the
    training split."""

    Data = TextData
    Eval = TextEval
    presets = PRESETS
    model_kinds = ("lm",)
    plot = {"train": "train_bpb", "valid": "valid_bpb"}
    held_out = ("valid", "test")

    def __init__(
        self,
        text: EncodedText,
        tokenizer: Tokenizer,
        model: ModelConfig,
        cfg: TrainConfig,
        data: TextData,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
    ):
        self.text, self.tokenizer, self.cfg, self.data = text, tokenizer, cfg, data
        self.device = device
        self.recurrent = reads_segments(model.model)
        train, context = text.tokens["train"], model.context
        self.context = context
        if self.recurrent and (data.context_warmup or data.batch_warmup):
            raise UserError(f"--context-warmup and --batch-warmup cut random windows; --model "
                            f"{model.model} reads the text in ordered segments")  # fmt: skip
        if self.recurrent:
            self.batches = Streams(train, context, cfg.batch_size, rank, world)
        else:
            self.batches = RandomWindows(train, context, cfg.batch_size, cfg.seed, rank, world)
        self.memory = None  # Transformer-XL's state, carried from segment to segment
        self.saved_memory: dict[str, Tensor] = {}  # from a checkpoint, until the model is seen

    @classmethod
    def setup(cls, setup: Setup) -> tuple[LanguageModelTask, nn.Module]:
        data = setup.data
        splits = read_splits(data)
        if setup.resuming:
            tokenizer = setup.folder.tokenizer()
        elif data.tokenizer == "bytes":
            tokenizer = train_tokenizer("bytes", [])
        else:
            sample = spread_sample(splits.train, TOKENIZER_SAMPLE)
            tokenizer = train_cached(data.tokenizer, sample, data.vocab_size or None)
        text = encode_splits(splits, tokenizer)
        cfg = replace(setup.model, vocab_size=tokenizer.vocab_size)
        check_long_enough(text, cfg.context, data.data)
        setup.say(f"data: {text.source}")
        sizes = ", ".join(f"{s} {text.n_bytes[s]:,} bytes" for s in SPLITS)
        setup.say(f"  {sizes}; {tokenizer.kind} tokenizer, vocab {tokenizer.vocab_size}")
        if setup.dist.main and not setup.resuming:
            setup.folder.save_tokenizer(tokenizer)
        task = cls(text, tokenizer, cfg, setup.train, data, setup.device,
                   setup.dist.rank, setup.dist.world)  # fmt: skip
        return task, LanguageModel(cfg).to(setup.device)

    def finish(self, setup: Setup, model: nn.Module) -> None:
        if not self.data.sample_tokens:
            return
        setup.say(f"--- sample, continuing the first {SAMPLE_PROMPT} tokens of the test split ---")
        prompt = self.text.tokens["test"][:SAMPLE_PROMPT].astype("int64")
        prompt = torch.as_tensor(prompt, device=setup.device)
        out = model.generate(prompt, self.data.sample_tokens, temperature=0.8,
                             seed=setup.train.seed)  # fmt: skip
        setup.say(self.tokenizer.decode(out[0, len(prompt) :].tolist()))
        setup.say("---")

    def next_batch(self, progress: float = 0.0) -> tuple:
        if self.recurrent:  # ordered segments, flagged where the streams start again
            x, y, *restart = next(self.batches)
        else:  # random windows: shorter or fewer while a warm-up lasts
            length = warmed_up(self.context, progress, self.data.context_warmup, multiple=8)
            rows = warmed_up(self.cfg.batch_size, progress, self.data.batch_warmup)
            (x, y), restart = self.batches.take(length, rows), []
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
            self.memory = unwrap(objective).model.new_state()
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
        if quick and self.data.eval_bytes:
            tokens = tokens[: int(self.data.eval_bytes / self.text.bytes_per_token(split)) + 1]
        result = bits_per_byte(
            model,
            tokens,
            self.text.bytes_per_token(split),
            batch_size=self.cfg.batch_size,
            device=self.device,
            show_progress=not quick,
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

    @classmethod
    def evaluate_folder(
        cls, folder: RunFolder, model: nn.Module, cfg: EvalConfig, options: TextEval
    ) -> dict[str, Any]:
        where = str(folder.file(folder.SETTINGS))
        data = from_settings(TextData, folder.settings_or_none().get("data", {}), where)
        source = cfg.data or data.data
        splits = read_splits(data, source)
        text = encode_splits(splits, folder.tokenizer(), names=(cfg.split,))
        if len(text.tokens[cfg.split]) < 2:
            raise UserError(f"{source}: the {cfg.split} split is too short to score")
        if options.memory is not None and not reads_segments(model.cfg.model):
            raise UserError(f"--memory applies to Transformer-XL runs; {folder} holds "
                            f"a {model.cfg.model} model")  # fmt: skip
        device = next(model.parameters()).device
        result = bits_per_byte(
            model, text.tokens[cfg.split], text.bytes_per_token(cfg.split),
            batch_size=cfg.batch_size, device=device, memory=options.memory,
        )  # fmt: skip
        print(
            f"{source} [{cfg.split}]: {result['bits_per_byte']:.4f} bits per byte over "
            f"{result['bytes']:,} bytes"
        )
        return {"data": source, "split": cfg.split, **result}
