"""HuggingFace model folders, as `save_pretrained` writes them, in and out of attnlab.

A folder holds `config.json`, the weights as `model.safetensors` (or shards listed in
`model.safetensors.index.json`) and the tokenizer (`tokenizer.json`, or the older
`vocab.json` + `merges.txt` / `vocab.txt`). Only safetensors are read: a pickled `.bin` file can
run code when loaded, so it is refused with the command that turns it into safetensors.

Each model family (GPT-2, BERT) is one file of `families/` that registers a `Family`: how the
HF config becomes a `ModelConfig` and back, and a table pairing each attnlab weight with the
HF weights it is made of. One table serves both directions, so attnlab → HF → attnlab is exact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers
from torch import Tensor, nn

from ..checkpoint import read_tensors, weight_tensors
from ..config import ConfigError, ModelConfig
from ..data.tokenizers import (
    BPETokenizer,
    ByteTokenizer,
    HuggingFaceTokenizer,
    Tokenizer,
    WordPieceTokenizer,
)
from ..errors import UserError
from ..io import atomic_write, read_json_object, write_json
from ..look.tokens import byte_level_decoder
from ..registry import MODELS, Registry

FAMILIES = Registry("HF model family", "attnlab.interop.families")
CONFIG, WEIGHTS, INDEX = "config.json", "model.safetensors", "model.safetensors.index.json"
PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


@dataclass
class Pair:
    """An attnlab weight and the HF weights it is made of: `theirs` concatenated along the
    first axis (BERT's query, key, value -> to_qkv), each transposed first where `transposed`
    (GPT-2's Conv1D stores a Linear's weight as (in, out))."""

    ours: str
    theirs: tuple[str, ...]
    transposed: bool = False

    def gather(self, tensors: dict[str, Tensor]) -> Tensor:
        parts = [tensors[name].t() if self.transposed else tensors[name] for name in self.theirs]
        return torch.cat(parts).contiguous() if len(parts) > 1 else parts[0].contiguous()

    def scatter(self, tensor: Tensor) -> dict[str, Tensor]:
        parts = tensor.chunk(len(self.theirs)) if len(self.theirs) > 1 else (tensor,)
        return {name: (p.t() if self.transposed else p).contiguous()
                for name, p in zip(self.theirs, parts, strict=True)}  # fmt: skip


# attnlab activation <-> HF `hidden_act` / `activation_function`
ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "relu2": "relu2"}
HF_ACTIVATIONS = {
    **{hf: ours for ours, hf in ACTIVATIONS.items()},
    "gelu_pytorch_tanh": "gelu_tanh",
}
# What both families are: settings that must hold, and how a message names them.
PLAIN = (("model", "transformer"), ("attention", "dense"), ("position", "learned"),
         ("head_mode", "narrow"), ("bias", True), ("qk_norm", False), ("qkv_conv", 0),
         ("logit_cap", 0.0), ("value_residual", False))  # fmt: skip


class Family:
    """One HF model family. Subclasses register with `@FAMILIES.register(model_type)`."""

    name: ClassVar[str]  # HF's model_type
    title: ClassVar[str]  # what messages call it
    kind: ClassVar[str]  # the attnlab model kind it becomes
    prefix: ClassVar[str]  # the base model's prefix in the HF names ("transformer.")
    layout: ClassVar[tuple[tuple[str, Any], ...]]  # the settings its layout fixes
    ignorable: ClassVar[tuple[str, ...]] = ()  # HF names (endings) with no part in the model
    # attnlab setting -> (HF config key, HF's default)
    names: ClassVar[dict[str, tuple[str, Any]]]
    inner: ClassVar[str]  # the HF key of the feed-forward's hidden width
    activation: ClassVar[tuple[str, str]]  # the HF key of the activation, and its default
    dropouts: ClassVar[tuple[str, ...]]  # HF keys that take attnlab's one dropout rate
    requires: ClassVar[tuple[tuple[str, Any, Any, str], ...]]  # (key, needed, default, what)
    fixed: ClassVar[dict[str, Any]]  # HF config entries `to_hf` always writes

    @classmethod
    def prefixed(cls, name: str) -> bool:
        """Whether an HF weight sits under the base model's prefix (not a head's)."""
        return True

    @classmethod
    def tokenizer_arguments(cls, tokenizer: Tokenizer) -> dict[str, Any]:
        """Model arguments that come from the tokenizer (BERT's [CLS] id)."""
        return {}

    @classmethod
    def check(cls, model: nn.Module, where: str) -> None:
        """Refuse, naming the feature, a model the HF family cannot express."""
        cfg = model.cfg
        for setting, value in PLAIN + cls.layout:
            if getattr(cfg, setting) != value:
                layout = ", ".join(flag_of(s, v) for s, v in PLAIN + cls.layout)
                raise UserError(
                    f"{where}: {flag_of(setting, getattr(cfg, setting))} has no "
                    f"equivalent in HF {cls.title}, whose layout is {layout}"
                )
        if cfg.activation not in ACTIVATIONS:
            raise UserError(f"{where}: --activation {cfg.activation} has no equivalent in HF "
                            f"{cls.title} (it has: {', '.join(ACTIVATIONS)})")  # fmt: skip

    @classmethod
    def model_config(cls, hf: dict[str, Any], where: str) -> ModelConfig:
        """The attnlab shape of an HF config (`names`, `requires` and `layout` say how)."""
        for key, needed, default, what in cls.requires:
            if hf.get(key, default) != needed:
                raise UserError(f"{where}: {key}={hf[key]!r} ({what}) has no attnlab equivalent")
        activation_key, activation = cls.activation
        activation = hf.get(activation_key, activation)
        if activation not in HF_ACTIVATIONS:
            raise UserError(f"{where}: {activation_key} {activation!r} has no attnlab "
                            f"equivalent (it reads: {', '.join(HF_ACTIVATIONS)})")  # fmt: skip
        settings = {ours: hf.get(key, default) for ours, (key, default) in cls.names.items()}
        inner_key, width = cls.inner, settings["width"]
        inner = hf.get(inner_key) or 4 * width
        if inner % width:
            raise UserError(f"{where}: {inner_key} {inner} is no multiple of the width {width}")
        try:
            return ModelConfig(
                **settings, **dict(cls.layout), position="learned",
                activation=HF_ACTIVATIONS[activation], ff_mult=inner // width,
            )  # fmt: skip
        except ConfigError as error:
            raise UserError(f"{where}: {error}") from error

    @classmethod
    def hf_config(cls, model: nn.Module) -> dict[str, Any]:
        """The HF config of `model`: the family's fixed entries, then its shape."""
        cfg = model.cfg
        return {
            **cls.fixed,
            **{key: getattr(cfg, ours) for ours, (key, _) in cls.names.items()},
            cls.inner: cfg.ff_mult * cfg.width,
            cls.activation[0]: ACTIVATIONS[cfg.activation],
            **{key: cfg.dropout for key in cls.dropouts},
        }

    @classmethod
    def pairs(cls, model: nn.Module, tensors: dict[str, Tensor]) -> list[Pair]:
        """Every attnlab weight with its HF names (`tensors`: the HF ones, when reading)."""
        raise NotImplementedError

    @classmethod
    def prepare(cls, theirs: dict[str, Tensor]) -> None:
        """Settle the HF names before the table reads them (aliases of one weight)."""

    @classmethod
    def adjust_in(cls, ours: dict[str, Tensor], theirs: dict[str, Tensor]) -> None:
        """What the table cannot say, HF -> attnlab (BERT's segment embedding)."""

    @classmethod
    def adjust_out(cls, model: nn.Module, theirs: dict[str, Tensor]) -> None:
        """What the table cannot say, attnlab -> HF."""


def flag_of(setting: str, value: Any) -> str:
    """A setting as the flag that gives it: `--norm pre`, `--no-bias`."""
    flag = "--" + setting.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def linear(ours: str, *theirs: str, transposed: bool = False) -> list[Pair]:
    """A Linear's (or LayerNorm's) weight and bias: `ours.weight` from `theirs.weight`, ..."""
    return [Pair(f"{ours}.weight", tuple(f"{t}.weight" for t in theirs), transposed),
            Pair(f"{ours}.bias", tuple(f"{t}.bias" for t in theirs))]  # fmt: skip


def read_hf_weights(folder: Path, architecture: str = "AutoModel") -> dict[str, Tensor]:
    """Every tensor of the folder's safetensors (one file or shards); pickles are refused, with
    the command that rewrites them as safetensors (`architecture`: the HF class to load with)."""
    if (folder / WEIGHTS).is_file():
        return read_tensors(folder / WEIGHTS, "HF model weights")
    if (folder / INDEX).is_file():
        index = read_json_object(folder / INDEX, "safetensors index", ("weight_map",))
        tensors: dict[str, Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            if Path(shard).name != shard:
                raise UserError(f"{folder / INDEX}: shard {shard!r} lies outside the folder")
            tensors.update(read_tensors(folder / shard, "HF model weights"))
        return tensors
    pickled = [name for name in PICKLED if (folder / name).exists()]
    if pickled:
        raise UserError(
            f"{folder / pickled[0]}: attnlab reads weights from safetensors only (a pickled "
            "file can run code when loaded). If you trust it, convert it once with "
            f'transformers: python -c "import transformers as t; t.{architecture}.'
            f"from_pretrained('{folder}').save_pretrained('{folder}')\""
        )
    raise UserError(f"{folder}: no {WEIGHTS} (nor {INDEX}) to read the weights from")


def family_of(hf: dict[str, Any], where: Path) -> type[Family]:
    model_type = hf.get("model_type")
    if model_type not in FAMILIES:
        raise UserError(
            f"{where}: model_type {model_type!r} is not one attnlab converts; it reads: "
            f"{', '.join(FAMILIES)}"
        )
    return FAMILIES[model_type]


def from_hf(folder: str | os.PathLike) -> tuple[nn.Module, Tokenizer, list[str]]:
    """The attnlab model (eval mode) and tokenizer of an HF folder, and notes for the user."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--from-hf {folder}: no such folder")
    hf = read_json_object(folder / CONFIG, "HF model config", ("model_type",))
    family = family_of(hf, folder / CONFIG)
    cfg = family.model_config(hf, str(folder / CONFIG))
    architecture = str((hf.get("architectures") or ["AutoModel"])[0])
    tensors = read_hf_weights(folder, architecture if architecture.isidentifier() else "AutoModel")
    theirs = {strip_prefix(name, family): t for name, t in tensors.items()}
    tokenizer = read_hf_tokenizer(folder, hf)
    model = MODELS[family.kind](cfg, **family.tokenizer_arguments(tokenizer))
    family.prepare(theirs)
    ours, used = {}, set()
    for pair in family.pairs(model, theirs):
        missing = [name for name in pair.theirs if name not in theirs]
        if missing:
            raise UserError(f"{folder}: no weight {missing[0]!r}, which a {family.title} "
                            f"{model.title} needs")  # fmt: skip
        ours[pair.ours] = pair.gather(theirs)
        used.update(pair.theirs)
    family.adjust_in(ours, theirs)
    expected = model.state_dict()
    for name, tensor in ours.items():
        if expected[name].shape != tensor.shape:
            raise UserError(f"{folder}: {name} has shape {tuple(tensor.shape)}; "
                            f"{CONFIG} makes it {tuple(expected[name].shape)}")  # fmt: skip
    with torch.no_grad():
        for name, tensor in ours.items():
            expected[name].copy_(tensor.to(expected[name].dtype))
    unused = sorted(n for n in set(theirs) - used if not n.endswith(family.ignorable))
    notes = []
    if unused:
        notes.append(f"left out {len(unused)} HF weight(s) with no part in a {model.title}: "
                     + ", ".join(unused[:4]) + (" ..." if len(unused) > 4 else ""))  # fmt: skip
    return model.eval(), tokenizer, notes


def strip_prefix(name: str, family: type[Family]) -> str:
    """HF names without the base model's prefix (a `GPT2Model` saves `h.0...`, a
    `GPT2LMHeadModel` `transformer.h.0...`): one spelling for the table."""
    prefix = family.prefix
    return name[len(prefix) :] if name.startswith(prefix) else name


def to_hf(model: nn.Module, tokenizer: Tokenizer | None, folder: str | os.PathLike,
          where: str) -> list[str]:  # fmt: skip
    """Write `model` (and its tokenizer) as an HF folder; returns notes for the user."""
    family = next((f for f in FAMILIES.values() if f.kind == model.kind), None)
    if family is None:
        able = ", ".join(f"{f.kind} ({f.title})" for f in FAMILIES.values())
        raise UserError(
            f"{where}: a {model.title} has no HF form attnlab writes; it writes: {able}"
        )
    family.check(model, where)
    ours = weight_tensors(model)
    theirs: dict[str, Tensor] = {}
    for pair in family.pairs(model, {}):
        theirs.update(pair.scatter(ours[pair.ours]))
    family.adjust_out(model, theirs)
    theirs = {family.prefix + name if family.prefixed(name) else name: t.detach().cpu()
              for name, t in theirs.items()}  # fmt: skip
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / WEIGHTS, lambda tmp: save_file(theirs, str(tmp), {"format": "pt"}))
    write_json(folder / CONFIG, family.hf_config(model))
    return write_hf_tokenizer(tokenizer, folder, model.cfg.context)


# --- tokenizers ------------------------------------------------------------------------------
def read_hf_tokenizer(folder: Path, hf: dict[str, Any]) -> Tokenizer:
    """The folder's tokenizer as an attnlab one: byte-level BPE (GPT-2) or WordPiece (BERT)."""
    if (folder / "tokenizer.json").is_file():
        try:
            inner = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:  # the library's own parse errors
            raise UserError(f"{folder / 'tokenizer.json'}: unreadable ({error})") from error
    elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        bpe = models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"))
        inner = HFTokenizer(bpe)
        inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        inner.decoder = decoders.ByteLevel()
    elif (folder / "vocab.txt").is_file():
        settings = {}
        if (folder / "tokenizer_config.json").is_file():
            settings = read_json_object(folder / "tokenizer_config.json", "tokenizer config")
        inner = HFTokenizer(
            models.WordPiece.from_file(str(folder / "vocab.txt"), unk_token="[UNK]")
        )
        lower = bool(settings.get("do_lower_case", True))
        inner.normalizer = normalizers.BertNormalizer(lowercase=lower)
        inner.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        inner.decoder = decoders.WordPiece()
    else:
        raise UserError(f"{folder}: no tokenizer.json, vocab.json + merges.txt, or vocab.txt")
    wrapper = WordPieceTokenizer if type(inner.model).__name__ == "WordPiece" else BPETokenizer
    tokenizer = wrapper(inner)
    vocab = hf.get("vocab_size", tokenizer.vocab_size)
    if tokenizer.vocab_size > vocab:
        raise UserError(f"{folder}: the tokenizer has {tokenizer.vocab_size} ids, the model "
                        f"only {vocab}")  # fmt: skip
    return tokenizer


def byte_tokenizer_json() -> HFTokenizer:
    """attnlab's bytes tokenizer as HF byte-level BPE without merges: id b is byte b."""
    chars = {b: c for c, b in byte_level_decoder().items()}
    inner = HFTokenizer(models.BPE({chars[b]: b for b in range(256)}, []))
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    inner.decoder = decoders.ByteLevel()
    return inner


def write_hf_tokenizer(tokenizer: Tokenizer | None, folder: Path, context: int) -> list[str]:
    if isinstance(tokenizer, ByteTokenizer):
        inner = byte_tokenizer_json()
    elif isinstance(tokenizer, HuggingFaceTokenizer):
        inner = tokenizer.hf
    else:
        kind = tokenizer.kind if tokenizer is not None else "none"
        return [f"the tokenizer ({kind}) has no HF form: only the model was written"]
    atomic_write(folder / "tokenizer.json", lambda tmp: inner.save(str(tmp)))
    settings: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast",
                                "model_max_length": context}  # fmt: skip
    vocab = inner.get_vocab()
    for role, token in (("unk", "[UNK]"), ("pad", "[PAD]"), ("cls", "[CLS]"),
                        ("sep", "[SEP]"), ("mask", "[MASK]")):  # fmt: skip
        if token in vocab:
            settings[f"{role}_token"] = token
    write_json(folder / "tokenizer_config.json", settings)
    return []
