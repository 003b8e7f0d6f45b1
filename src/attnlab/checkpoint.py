"""Saving and loading models as a folder: `config.json` (what to build) and
`model.safetensors` (the weights). Nothing is ever unpickled, so a downloaded folder is data,
never code.

Files are written under a temporary name and renamed into place, so an interrupted save
leaves the previous version intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_model
from torch import nn

from . import files
from .config import ModelConfig
from .errors import UserError
from .io import atomic_write, read_json_object, write_json
from .registry import MODELS

# Version 2: variants as plug-ins; their options nested under "options" in the model config.
FORMAT_VERSION = 2
CONFIG_FILE = files.CONFIG
WEIGHTS_FILE = files.WEIGHTS


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside torch.compile or DistributedDataParallel wrappers, so saved
    names never carry their prefixes (`_orig_mod.`, `module.`)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save(model: nn.Module, folder: str | os.PathLike) -> Path:
    """Write `config.json` and `model.safetensors` into `folder` (created if needed)."""
    folder = Path(folder)
    model = unwrap(model)
    config = {"format_version": FORMAT_VERSION, "kind": model.kind, **model.config_dict()}
    atomic_write(folder / WEIGHTS_FILE, lambda tmp: save_model(model, str(tmp)))
    write_json(folder / CONFIG_FILE, config)
    return folder


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The parsed `config.json` of a model folder, checked for kind and format version."""
    path = Path(folder) / CONFIG_FILE
    if not Path(folder).is_dir():
        raise UserError(f"{folder}: no such run folder")
    what = "model config (is this an attnlab run folder?)"
    config = read_json_object(path, what, ("kind", "model"))
    version = config.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(
            f"{path}: format version {version} was written by a newer attnlab "
            f"(this one reads up to {FORMAT_VERSION}); upgrade attnlab"
        )
    if version < FORMAT_VERSION:
        raise UserError(
            f"{path}: format version {version} was written by an older attnlab, whose models "
            "have another layout; train the model again"
        )
    if config["kind"] not in MODELS:
        raise UserError(f"{path}: unknown model kind {config['kind']!r}")
    return config


def build(config: dict[str, Any], path: Path | None = None) -> nn.Module:
    """A freshly initialised model of the class and shape a config describes."""
    where = str(path or CONFIG_FILE)
    try:
        cfg = ModelConfig.from_dict(config["model"], "model")
        options = {k: v for k, v in config.items() if k not in ("format_version", "kind", "model")}
        return MODELS[config["kind"]](cfg, **options)
    except (TypeError, ValueError) as error:  # ConfigError included
        raise UserError(f"{where}: {error}") from error


def weight_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state, with each shared (tied) tensor kept under its first name only."""
    seen, tensors = set(), {}
    for name, tensor in unwrap(model).state_dict().items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            tensors[name] = tensor.detach().contiguous()
    return tensors


def assign_weights(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Copy `tensors` into `model`, insisting every name and shape matches; `path` names the
    file they came from in errors."""
    expected = unwrap(model).state_dict()
    # Tied weights are stored once, under any one of their names.
    names_of: dict[int, list[str]] = {}
    for name, tensor in expected.items():
        names_of.setdefault(tensor.data_ptr(), []).append(name)
    missing = [names[0] for names in names_of.values() if not any(n in tensors for n in names)]
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"{path}: weights do not match the config (missing: {missing[:5]}, "
            f"unexpected: {unexpected[:5]})"
        )
    for name, tensor in tensors.items():
        if expected[name].shape != tensor.shape:
            raise UserError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, the config wants "
                f"{tuple(expected[name].shape)}"
            )
    with torch.no_grad():
        for names in names_of.values():
            source = next(tensors[n] for n in names if n in tensors)
            expected[names[0]].copy_(source)


def read_tensors(path: Path, what: str = "model weights") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, or a UserError naming the file."""
    if not path.is_file():
        raise UserError(f"{path}: missing {what}")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as error:
        raise UserError(f"{path}: unreadable or truncated {what} ({error})") from error


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights into `model`, insisting every name and shape matches."""
    assign_weights(model, read_tensors(path), path)


def load(folder: str | os.PathLike, device: str | torch.device | None = None) -> nn.Module:
    """The model saved in `folder`, of the right class, in eval mode."""
    folder = Path(folder)
    config = read_config(folder)
    model = build(config, folder / CONFIG_FILE)
    load_weights(model, folder / WEIGHTS_FILE)
    if device is not None:
        model.to(device)
    return model.eval()
