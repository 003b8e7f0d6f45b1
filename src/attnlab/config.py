"""Typed settings for models, validated once at construction.

Every field is also a command-line flag (see `cli.py`): `ModelConfig.ff_mult` becomes
`--ff-mult`. The `help` in each field's metadata is the flag's help text, and `choices`
lists the values a string field accepts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field that carries its command-line help and allowed values."""
    return field(default=default, metadata={"help": help, "choices": choices})


class ConfigError(UserError, ValueError):
    """A setting a user gave is not valid; the message says which and why."""


@dataclass
class ModelConfig:
    """Shape of a transformer: sizes, attention mechanism, positions and per-variant options."""

    vocab_size: int = option(256, "number of distinct tokens")
    context: int = option(256, "tokens the model sees at once")
    depth: int = option(6, "number of transformer blocks")
    width: int = option(256, "embedding width (d_model)")
    heads: int = option(8, "attention heads")
    model: str = option(
        "transformer",
        "layer stack: independent blocks, one shared block with adaptive computation "
        "time (Dehghani et al. 2019), or segment recurrence (Dai et al. 2019)",
        ("transformer", "universal", "xl"),
    )
    attention: str = option("dense", "attention mechanism", ("dense", "basic", "sparse", "nystrom"))
    attention_path: str = option(
        "fused",
        "dense attention: fused kernel (scaled_dot_product_attention) or the explicit "
        "softmax(QK^T/sqrt(d))V that keeps the weights for inspection",
        ("fused", "reference"),
    )
    head_mode: str = option(
        "narrow",
        "narrow: split the width into heads; wide: every head sees the full width",
        ("narrow", "wide"),
    )
    position: str = option(
        "learned",
        "position information",
        ("learned", "sinusoidal", "rope", "alibi", "none", "relative"),
    )
    norm: str = option(
        "pre", "LayerNorm before (GPT-2) or after (Vaswani) each sublayer", ("pre", "post")
    )
    activation: str = option("relu", "feed-forward non-linearity", ("relu", "gelu"))
    ff_mult: int = option(4, "feed-forward hidden width as a multiple of the width")
    dropout: float = option(0.0, "dropout probability")
    tie_weights: bool = option(True, "share the token embedding with the output layer")
    bias: bool = option(True, "biases in linear layers and LayerNorm")

    # Sparse attention (Child et al. 2019)
    sparse_pattern: str = option("strided", "sparse pattern", ("strided", "fixed", "local"))
    sparse_block: int = option(
        64, "sparse block length l: stride of 'strided', block of 'fixed', window of 'local'"
    )
    sparse_summary: int = option(8, "'fixed' pattern: summary positions c at each block's end")

    # Nystrom attention (Xiong et al. 2021)
    landmarks: int = option(64, "Nystrom landmarks m")
    pinv_iterations: int = option(6, "iterations of the Moore-Penrose pseudo-inverse")
    nystrom_conv: int = option(33, "kernel of the depthwise convolution on values (0: none)")

    # Transformer-XL (Dai et al. 2019)
    memory: int = option(256, "Transformer-XL: hidden states kept from earlier segments")
    clamp_len: int = option(
        0,
        "Transformer-XL: largest relative distance encoded "
        "(0: memory + context - 1, the largest training sees)",
    )

    # Universal Transformer (Dehghani et al. 2019) with ACT (Graves 2016)
    max_steps: int = option(6, "Universal Transformer: most applications of the shared block")
    act: bool = option(True, "Universal Transformer: adaptive computation time (else fixed steps)")
    act_epsilon: float = option(0.01, "ACT: a position halts once its halting sum reaches 1-eps")
    ponder_cost: float = option(0.01, "ACT: weight tau of the ponder cost tau*(N+R)")

    def __post_init__(self) -> None:
        if self.model == "xl":
            self.position = "relative"  # Transformer-XL always encodes relative distances
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.width if self.head_mode == "wide" else self.width // self.heads

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise ConfigError(f"{f.name}={value!r} is not one of: {', '.join(choices)}")
        for name in (
            "vocab_size",
            "context",
            "depth",
            "width",
            "heads",
            "ff_mult",
            "sparse_block",
            "landmarks",
            "pinv_iterations",
            "max_steps",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("memory", "clamp_len", "nystrom_conv", "sparse_summary"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.head_mode == "narrow" and self.width % self.heads:
            raise ConfigError(
                f"width {self.width} is not divisible by heads {self.heads}; "
                "choose another width or heads, or --head-mode wide"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.position == "rope" and self.head_dim % 2:
            raise ConfigError(f"rope needs an even head width, got {self.head_dim}")
        if self.position == "alibi" and self.attention not in ("dense",):
            raise ConfigError("position 'alibi' adds a bias to dense scores; use --attention dense")
        if self.attention == "basic" and self.position in ("rope", "alibi"):
            raise ConfigError("basic self-attention has no queries or keys to rotate or bias")
        if self.position == "relative" and self.model != "xl":
            raise ConfigError("relative positions belong to Transformer-XL: use --model xl")
        if not 0.0 < self.act_epsilon < 1.0:
            raise ConfigError(f"act_epsilon must be in (0, 1), got {self.act_epsilon}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a saved dict; unknown keys are an error (a newer format)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model settings: {', '.join(unknown)}")
        return cls(**data)


@dataclass
class TrainConfig:
    """How to train: data, optimisation, schedule, evaluation, checkpoints and device."""

    data: str = option("stdlib", "a text file, a folder of text files, 'stdlib' or 'enwik8'")
    glob: str = option("**/*", "which files of a --data folder to read")
    tokenizer: str = option(
        "bytes",
        "bytes (vocab 256) or one trained on the training split; a language model takes "
        "bytes or bpe",
        ("bytes", "chars", "words", "bpe", "wordpiece"),
    )
    valid_fraction: float = option(0.05, "share of a single text held out for validation")
    test_fraction: float = option(0.05, "share of a single text held out for testing")
    batch_size: int = option(32, "sequences per optimiser step (per process)")
    accumulate: int = option(1, "micro-batches whose gradients add up to one step")
    steps: int = option(0, "optimiser steps to train in all (0: stop by --minutes)")
    minutes: float = option(0.0, "wall-clock training budget in minutes (0: stop by --steps)")
    lr: float = option(1e-3, "peak learning rate")
    min_lr: float = option(1e-4, "learning rate at the end of the cosine decay")
    warmup: int = option(100, "steps of linear learning-rate warm-up")
    weight_decay: float = option(0.1, "AdamW weight decay, applied to matrices only")
    beta2: float = option(0.99, "AdamW beta2")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: no clipping)")
    eval_every: int = option(250, "steps between validation checks")
    eval_bytes: int = option(65536, "validation bytes scored at each check (0: all)")
    save_every: int = option(500, "steps between checkpoints")
    sample_tokens: int = option(300, "tokens sampled at the end of training")
    seed: int = option(0, "random seed for initialisation, batches and dropout")
    device: str = option("auto", "cpu, cuda, mps or auto")
    precision: str = option(
        "auto",
        "autocast precision; auto: bf16 on a GPU that has it, fp32 on a CPU",
        ("auto", "fp32", "bf16", "fp16"),
    )
    compile: bool = option(False, "compile the model with torch.compile")

    def __post_init__(self) -> None:
        if self.steps < 0 or self.minutes < 0:
            raise ConfigError("steps and minutes must not be negative")
        if self.steps == 0 and self.minutes == 0:
            raise ConfigError("give a budget: --steps N or --minutes M")
        for name in ("batch_size", "accumulate", "eval_every", "save_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.valid_fraction < 0.5 or not 0 <= self.test_fraction < 0.5:
            raise ConfigError("valid_fraction and test_fraction must each be in [0, 0.5)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ClassifyConfig:
    """What only text classification needs: where texts and labels are, and how to pool."""

    text_column: str = option("", "column of the texts (default: text, or an obvious guess)")
    label_column: str = option("", "column of the labels (default: label, or an obvious guess)")
    valid: str = option("", "a separate validation file (default: a stratified share of train)")
    test: str = option("", "a separate test file")
    pooling: str = option("mean", "how token outputs become one vector", ("mean", "max", "cls"))
    class_weights: bool = option(False, "weight the loss by inverse class frequency")
    size: int = option(0, "ListOps: examples in all (0: LRA's 100,000)")
    max_length: int = option(0, "ListOps: longest example in tokens (0: LRA's 2,000)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# A preset fills in model and training settings; flags given on the command line win.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # A few minutes on a 2-core CPU: learns recognisable Python from the default corpus.
    "tiny": {
        "model": dict(context=128, depth=4, width=128, heads=4),
        # Small batches at a high rate: more steps in the budget beat larger ones here
        # (batch 32 at 2e-3: 2.55 test bits per byte; batch 16 at 4e-3: 2.27; batch 8: worse).
        "train": dict(minutes=3.0, batch_size=16, lr=4e-3, warmup=30, eval_every=200),
    },
    # Half an hour to hours on a CPU, minutes on a GPU.
    "small": {
        "model": dict(context=256, depth=6, width=256, heads=8),
        "train": dict(steps=5000, batch_size=32, lr=1e-3),
    },
    # The model of "Transformers from scratch" behind its 1.343 bits per byte on enwik8:
    # 12 blocks, width 256, context 256, batch 32, about 170,000 batches.
    "enwik8-seed": {
        "model": dict(context=256, depth=12, width=256, heads=8),
        "train": dict(
            data="enwik8",
            steps=170_000,
            batch_size=32,
            lr=3e-4,
            min_lr=3e-5,
            warmup=5000,
            eval_every=2000,
            save_every=2000,
        ),
    },
}

CLASSIFY_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Minutes on a 2-core CPU: 20,000 ListOps examples of at most 500 tokens.
    "listops-small": {
        # Words keep LRA's tokens but for "[" split from each operator: ~15% more tokens.
        "model": dict(context=600, depth=4, width=128, heads=4, position="sinusoidal"),
        "train": dict(
            data="listops", tokenizer="words", steps=1500, batch_size=32, lr=1e-3, eval_every=250
        ),
        "classify": dict(size=20_000, max_length=500),
    },
    # Long Range Arena's ListOps: lengths up to 2,000 (Tay et al. 2021), for a GPU.
    "listops-lra": {
        "model": dict(context=2000, depth=4, width=512, heads=8, ff_mult=2),
        "train": dict(
            data="listops",
            steps=5000,
            batch_size=32,
            lr=5e-4,
            warmup=1000,
            eval_every=500,
            save_every=500,
        ),
    },
    # The seed's IMDb classifier: 6 blocks, context 512, max pooling, about 85% test accuracy.
    "imdb-seed": {
        "model": dict(context=512, depth=6, width=128, heads=8, vocab_size=50_000),
        "train": dict(
            data="imdb",
            tokenizer="words",
            steps=20_000,
            batch_size=16,
            lr=1e-4,
            warmup=1000,
            eval_every=1000,
            save_every=1000,
        ),
        "classify": dict(pooling="max"),
    },
}
