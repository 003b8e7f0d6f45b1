"""Typed settings, validated once at construction.

Every field is also a command-line flag (`commands/flags.py`): `ModelConfig.ff_mult` becomes
`--ff-mult`, and a variant's own options (`NystromAttention.Options.landmarks`) become
`--nystrom.landmarks`. A field's metadata carries its help text, allowed values and bounds, so
the flag's help, the check and the error message all come from one place.

Capabilities: an attention core declares what it `provides` ("causal", "cache", "bias", "qk",
"cross"); a position encoding, a layer stack or a model kind declares what it `needs` of it.
`check_supports` compares the two, in one place, with one message.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .device import device_complaint
from .errors import ConfigError
from .registry import (
    ACTIVATIONS,
    ATTENTION,
    OPTIMIZERS,
    POSITIONS,
    SCHEDULES,
    STACKS,
    Registry,
)

# What an attention core can offer, in the words an error message uses.
FEATURES = {
    "causal": "can be causal (no query sees a later key)",
    "cache": "keeps an incremental state for generation",
    "bias": "takes an additive score bias",
    "qk": "has queries and keys",
    "cross": "attends from one sequence to another (cross-attention)",
}


def option(
    default: Any,
    help: str,
    *,
    choices: Iterable[str] | None = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    kind: type | None = None,
    check: Callable[[Any], str | None] | None = None,
    positional: bool = False,
    many: bool = False,
) -> Any:
    """A dataclass field that carries its command-line help, allowed values and bounds.

    `kind` is the value's type where the default does not tell it (a default of None);
    `many`: the value is a tuple of such values (a flag taking several); choices and bounds
    apply to each. `check(value)` returns a complaint or None, for rules the bounds cannot say.
    """
    if kind is None:
        kind = type(default[0]) if many else type(default)
    metadata = {
        "help": help,
        "choices": choices,
        "bounds": (at_least, above, at_most, below),
        "kind": kind,
        "check": check,
        "positional": positional,
        "many": many,
    }
    return field(default=default, metadata=metadata)


def flag_name(name: str, prefix: str = "") -> str:
    """The command-line spelling of a setting: `ff_mult` -> `--ff-mult`."""
    return "--" + prefix + name.replace("_", "-")


def describe_bounds(bounds: tuple) -> str:
    words = ("at least", "above", "at most", "below")
    return " and ".join(f"{w} {b:g}" for w, b in zip(words, bounds, strict=True) if b is not None)


def coerce(value: Any, kind: type, name: str) -> Any:
    """`value` as `kind` where that loses nothing (JSON gives 3.0 for 3), else a ConfigError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{name}: must be a finite number, got {value}")
            return float(value)
    elif isinstance(value, kind):
        return value
    raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}")


def check_fields(obj: Any, prefix: str = "") -> None:
    """Check (and normalise the type of) every `option` field of a dataclass instance: its
    type, allowed values, bounds and own check. Messages name the flag."""
    for f in dataclasses.fields(obj):
        if "help" not in f.metadata:
            continue
        name, value = flag_name(f.name, prefix), getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        value = check_setting(f, name, value)
        setattr(obj, f.name, value)
        complaint = f.metadata["check"](value) if f.metadata["check"] else None
        if complaint:
            raise ConfigError(f"{name}: {complaint}")


def check_setting(f: dataclasses.Field, name: str, value: Any) -> Any:
    """The value of a field (a tuple of values for a `many` field), checked and normalised;
    a complaint names `name`."""
    if value is None and f.default is None:
        return None
    if f.metadata["many"]:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{name}: expected one or more values, got {value!r}")
        return tuple(check_value(f, name, v) for v in value)
    return check_value(f, name, value)


def check_value(f: dataclasses.Field, name: str, value: Any) -> Any:
    """One value of a field: of its kind, among its choices, within its bounds."""
    value = coerce(value, f.metadata["kind"], name)
    choices = f.metadata["choices"]
    if choices is not None and value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of: {', '.join(choices)}")
    at_least, above, at_most, below = f.metadata["bounds"]
    if (
        (at_least is not None and value < at_least)
        or (above is not None and value <= above)
        or (at_most is not None and value > at_most)
        or (below is not None and value >= below)
    ):
        raise ConfigError(f"{name}: must be {describe_bounds(f.metadata['bounds'])}, got {value!r}")
    return value


def from_settings(cls: type, settings: dict[str, Any], where: str, prefix: str = "") -> Any:
    """A config dataclass from a dict (flags, a preset, a saved file); a name it does not
    know is a ConfigError naming `where`."""
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: expected settings as a JSON object, got {settings!r}")
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    config = cls(**settings)
    check_fields(config, prefix)  # a dataclass that does not check itself is checked here
    return config


def device_option() -> Any:
    """The one definition of `--device`, shared by every command that runs a model."""
    return option(
        "auto",
        "where to run: auto (CUDA, else Apple MPS, else the CPU), cpu, cuda, cuda:N or mps",
        check=device_complaint,
    )


def seed_option(help: str = "random seed") -> Any:
    return option(0, help, at_least=0)


@dataclass
class NoOptions:
    """The options of a variant that has none."""


def options_of(variant: type) -> type:
    return getattr(variant, "Options", NoOptions)


def option_names(variant: type) -> list[str]:
    return [f.name for f in dataclasses.fields(options_of(variant))]


@dataclass
class ModelConfig:
    """Shape of a transformer: sizes, the variants it is built from, and their options.

    `model`, `attention` and `position` name registered variants (`attnlab list` shows them);
    `options` holds each chosen variant's own settings, e.g.
    `options={"nystrom": {"landmarks": 32}}` (or `{"landmarks": 32}` where the name is
    unambiguous). After construction it holds every option of the chosen variants.
    """

    vocab_size: int = option(256, "number of distinct tokens", at_least=1)
    context: int = option(256, "tokens the model sees at once", at_least=1)
    depth: int = option(6, "number of transformer blocks", at_least=1)
    width: int = option(256, "embedding width (d_model)", at_least=1)
    heads: int = option(8, "attention heads", at_least=1)
    model: str = option("transformer", "layer stack", choices=STACKS)
    attention: str = option("dense", "attention core", choices=ATTENTION)
    head_mode: str = option(
        "narrow",
        "narrow: split the width into heads; wide: every head sees the full width",
        choices=("narrow", "wide"),
    )
    position: str = option("learned", "position information", choices=POSITIONS)
    norm: str = option(
        "pre", "LayerNorm before (GPT-2) or after (Vaswani) each sublayer", choices=("pre", "post")
    )
    activation: str = option("relu", "feed-forward non-linearity", choices=ACTIVATIONS)
    norm_eps: float = option(1e-5, "LayerNorm epsilon (BERT: 1e-12)", above=0)
    embedding_norm: bool = option(False, "LayerNorm the embeddings before the first block (BERT)")
    ff_mult: int = option(4, "feed-forward hidden width as a multiple of the width", at_least=1)
    qkv_conv: int = option(0, "Primer: kernel of a causal depthwise convolution over positions "
                           "after the q, k and v projections (So et al. 2021; 0: none, Primer "
                           "uses 3)", at_least=0)  # fmt: skip
    dropout: float = option(0.0, "dropout probability", at_least=0, below=1)
    tie_weights: bool = option(True, "share the token embedding with the output layer")
    bias: bool = option(True, "biases in linear layers and LayerNorm")
    qk_norm: bool = option(False, "RMS-normalise each head's queries and keys (Dehghani 2023)")
    zero_init: bool = option(
        False, "start the maps into the residual stream (and an untied output layer) at zero"
    )
    logit_cap: float = option(
        0.0, "soft-cap the output logits to ±cap by cap·tanh(z/cap) (0: off; Gemma 2)", at_least=0
    )
    value_residual: bool = option(False, "later blocks attend over a learned mix of their "
                                  "values and the first block's (ResFormer)")  # fmt: skip
    options: dict[str, Any] = field(default_factory=dict)

    # The settings that choose a registered variant, whose options `options` holds.
    VARIANTS: ClassVar[dict[str, Registry]] = {"model": STACKS, "attention": ATTENTION,
                                               "position": POSITIONS}  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)
        stack = STACKS[self.model]
        if getattr(stack, "fixed_position", None):
            self.position = stack.fixed_position
        self.options = resolve_options(self)
        if self.head_mode == "narrow" and self.width % self.heads:
            raise ConfigError(
                f"--width {self.width} is not divisible by --heads {self.heads}; "
                "choose another width or heads, or --head-mode wide"
            )
        core = ATTENTION[self.attention]
        if self.qkv_conv and core.parameter_free:
            raise ConfigError(f"--qkv-conv needs q, k and v projections; --attention "
                              f"{self.attention} has none")  # fmt: skip
        if self.qk_norm:
            check_supports(self, ("qk",), "--qk-norm")
        if self.value_residual and (self.model != "transformer" or core.parameter_free):
            raise ConfigError(f"--value-residual needs --model transformer with values, not "
                              f"--model {self.model} --attention {self.attention}")  # fmt: skip
        for role, variant in (("position", POSITIONS[self.position]), ("model", stack)):
            check_supports(self, getattr(variant, "needs", ()), f"--{role} {variant.name}")
        for variant in self.variants():
            if hasattr(variant, "check_config"):
                variant.check_config(self)

    @property
    def head_dim(self) -> int:
        return self.width if self.head_mode == "wide" else self.width // self.heads

    def variants(self) -> list[type]:
        """The registered classes this config chooses: layer stack, attention core, positions."""
        return [registry[getattr(self, setting)] for setting, registry in self.VARIANTS.items()]

    def options_for(self, variant: Any) -> Any:
        """The typed options of a chosen variant (a class or an instance of one)."""
        return options_for(self, variant)

    def estimated_parameters(self) -> int:
        """About how many parameters the model has (the matrices; biases and norms left out),
        without building it: embedding, positions, head, and per block the attention
        projections and the feed-forward maps."""
        w = self.width
        blocks = self.depth if getattr(STACKS[self.model], "uses_depth", True) else 1
        inner = 0 if ATTENTION[self.attention].parameter_free else self.heads * self.head_dim
        per_block = 4 * w * inner + 2 * self.ff_mult * w * w
        embeddings = self.vocab_size * w * (1 if self.tie_weights else 2) + self.context * w
        return embeddings + blocks * per_block

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "model config") -> ModelConfig:
        return from_settings(cls, data, where)


def check_supports(cfg: ModelConfig, needs: Iterable[str], who: str) -> None:
    """Refuse a combination whose `who` needs a feature the chosen attention core lacks,
    naming the cores that have it."""
    core = ATTENTION[cfg.attention]
    provides = getattr(core, "provides", frozenset())
    for feature in needs:
        if feature not in provides:
            able = [name for name, c in ATTENTION.items() if feature in getattr(c, "provides", ())]
            raise ConfigError(
                f"{who} needs attention that {FEATURES[feature]}; --attention {cfg.attention} "
                f"does not. Attention that does: {', '.join(able)}"
            )


def resolve_options(cfg: Any) -> dict[str, dict[str, Any]]:
    """Every option of the variants a config chooses (`cfg.VARIANTS`: setting -> registry),
    checked, from the options given (nested by variant name, or flat where a name belongs to
    one chosen variant only)."""
    chosen = {registry[getattr(cfg, setting)].name: registry[getattr(cfg, setting)]
              for setting, registry in cfg.VARIANTS.items()}  # fmt: skip
    nested: dict[str, dict[str, Any]] = {}
    for key, value in cfg.options.items():
        if isinstance(value, dict):
            nested.setdefault(key, {}).update(value)
            continue
        owners = [name for name, variant in chosen.items() if key in option_names(variant)]
        if len(owners) != 1:
            where = "more than one" if owners else "none"
            raise ConfigError(
                f"option {key!r} belongs to {where} of the chosen variants "
                f"({', '.join(chosen)}); give it as {{variant: {{{key!r}: value}}}}"
            )
        nested.setdefault(owners[0], {})[key] = value
    for name, values in nested.items():
        if name not in chosen:
            setting = next((s for s, r in cfg.VARIANTS.items() if name in r), None)
            if setting is None:
                raise ConfigError(f"options for {name!r}, which is no known variant")
            first = flag_name(next(iter(values), ""), f"{name}.")
            raise ConfigError(
                f"{first} applies to --{setting} {name}; this run uses "
                f"--{setting} {getattr(cfg, setting)}"
            )
    resolved = {}
    for name, variant in chosen.items():
        if option_names(variant):
            options, where = nested.get(name, {}), f"{name} options"
            values = from_settings(options_of(variant), options, where, prefix=f"{name}.")
            resolved[name] = dataclasses.asdict(values)
    return resolved


def options_for(cfg: Any, variant: Any) -> Any:
    """The typed options of a variant (a class or an instance of one) a config chose."""
    cls = variant if isinstance(variant, type) else type(variant)
    return options_of(cls)(**cfg.options.get(cls.name, {}))


@dataclass
class TrainConfig:
    """How to train: the optimiser, its schedule, the budget, evaluation, checkpoints, device."""

    batch_size: int = option(32, "sequences per optimiser step (per process)", at_least=1)
    accumulate: int = option(1, "micro-batches whose gradients add up to one step", at_least=1)
    steps: int = option(0, "optimiser steps to train in all (0: stop by --minutes)", at_least=0)
    minutes: float = option(0.0, "wall-clock training budget in minutes (0: stop by --steps)",
                            at_least=0)  # fmt: skip
    optimizer: str = option("adamw", "optimiser", choices=OPTIMIZERS)
    schedule: str = option("cosine", "learning-rate schedule", choices=SCHEDULES)
    lr: float = option(1e-3, "peak learning rate", above=0)
    min_lr: float = option(1e-4, "learning rate at the end of the decay", at_least=0)
    warmup: int = option(100, "steps of linear learning-rate warm-up", at_least=0)
    weight_decay: float = option(0.1, "AdamW weight decay, applied to matrices only", at_least=0)
    beta2: float = option(0.99, "AdamW beta2", at_least=0, below=1)
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: no clipping)", at_least=0)
    eval_every: int = option(250, "steps between validation checks", at_least=1)
    save_every: int = option(500, "steps between checkpoints", at_least=1)
    seed: int = seed_option("random seed for initialisation, batches and dropout")
    device: str = device_option()
    precision: str = option(
        "auto",
        "autocast precision; auto: bf16 on a GPU that has it, fp32 on a CPU",
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    compile: bool = option(False, "compile the model with torch.compile")
    options: dict[str, Any] = field(default_factory=dict)

    VARIANTS: ClassVar[dict[str, Registry]] = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}

    def __post_init__(self) -> None:
        check_fields(self)
        if self.steps == 0 and self.minutes == 0:
            raise ConfigError("give a budget: --steps N or --minutes M")
        self.options = resolve_options(self)

    def options_for(self, variant: Any) -> Any:
        """The typed options of the chosen optimiser or schedule."""
        return options_for(self, variant)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
