"""The resumable state of a training run as one safetensors file: model, optimiser, random
number generators and whatever the task adds (its data order, a memory), with the step and
elapsed time as metadata. One file, written atomically, so it is always whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..checkpoint import assign_weights, read_tensors, weight_tensors
from ..errors import UserError
from ..io import atomic_write


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state into tensors (for safetensors) and the rest (for JSON)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = tensor
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return tensors


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count())]
    if cuda and all(f"rng.cuda.{i}" in tensors for i in range(len(cuda))):
        torch.cuda.set_rng_state_all(cuda)


def write_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> None:
    """Write everything needed to resume as one file."""
    tensors = {f"model.{k}": v for k, v in weight_tensors(model).items()}
    opt_tensors, opt_meta = optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors.update(rng_tensors())
    tensors.update({f"extra.{k}": v.detach().contiguous() for k, v in extra.items()})
    tensors = {k: v.cpu() for k, v in tensors.items()}
    metadata = {"meta": json.dumps({**meta, "optimizer": opt_meta})}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_training_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore model, optimiser and random states; return the extra tensors and metadata."""
    tensors = read_tensors(path, "training checkpoint")
    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads(f.metadata()["meta"])
        optimizer_meta = meta.pop("optimizer")
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: a training checkpoint without its metadata ({error})") from error
    device = next(model.parameters()).device
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    assign_weights(model, weights, path)
    try:
        restore_optimizer(
            optimizer,
            {k: v.to(device) if v.dim() else v for k, v in tensors.items()},
            optimizer_meta,
        )
        restore_rng(tensors)
    except (KeyError, ValueError, RuntimeError) as error:
        raise UserError(f"{path}: the optimiser or random state does not fit ({error})") from error
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    return extra, meta
