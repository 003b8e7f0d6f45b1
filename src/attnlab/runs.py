"""A run folder: everything needed to resume, evaluate, sample or share a training run.

    config.json, model.safetensors   the latest model (what `attnlab.load` reads)
    tokenizer.json                   how text becomes tokens
    train.json                       the training settings, so `--resume` needs nothing else
    checkpoint.safetensors           model, optimiser, data-order and random-number states,
                                     step and elapsed time: one file, so it is always whole
    metrics.jsonl, tensorboard/, curves.png

Every file is written under a temporary name and renamed into place, so an interrupted
save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .checkpoint import (
    assign_weights,
    atomic_write,
    read_json,
    read_tensors,
    save,
    weight_tensors,
    write_json,
)
from .errors import UserError

SETTINGS_FILE = "train.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "curves.png"


def prepare_folder(path: Path, *, resume: bool, overwrite: bool) -> Path:
    """Check that `path` may receive this run; never touch a finished run by accident."""
    if resume:
        if not (path / CHECKPOINT_FILE).is_file():
            raise UserError(f"{path}: no {CHECKPOINT_FILE} to resume from")
        return path
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise UserError(
            f"{path}: the folder already holds a run; resume it with --resume, "
            "choose another --out, or replace it with --overwrite"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"{path}: cannot write here ({error.strerror})") from error
    if overwrite:
        for name in (CHECKPOINT_FILE, METRICS_FILE, PLOT_FILE):
            (path / name).unlink(missing_ok=True)
    return path


def write_settings(folder: Path, settings: dict[str, Any]) -> None:
    write_json(folder / SETTINGS_FILE, settings)


def read_settings(folder: Path) -> dict[str, Any]:
    return read_json(folder / SETTINGS_FILE, "training settings")


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


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> None:
    """Write the resumable state as one file, then the shareable model beside it."""
    tensors = {f"model.{k}": v for k, v in weight_tensors(model).items()}
    opt_tensors, opt_meta = optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors.update(rng_tensors())
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in extra.items()})
    tensors = {k: v.cpu() for k, v in tensors.items()}
    metadata = {"meta": json.dumps({**meta, "optimizer": opt_meta})}
    atomic_write(folder / CHECKPOINT_FILE, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    save(model, folder)


def load_checkpoint(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore model, optimiser and random states; return the extra tensors and metadata."""
    from safetensors import safe_open

    path = folder / CHECKPOINT_FILE
    tensors = read_tensors(path, "training checkpoint")
    with safe_open(path, "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    device = next(model.parameters()).device
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    assign_weights(model, weights, path)
    restore_optimizer(
        optimizer,
        {k: v.to(device) if v.dim() else v for k, v in tensors.items()},
        meta.pop("optimizer"),
    )
    restore_rng(tensors)
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    return extra, meta


class MetricsLog:
    """Metrics as JSON lines, TensorBoard events, and a PNG of the curves."""

    def __init__(self, folder: Path, plot: dict[str, str], resume_step: int | None = None):
        self.folder, self.plot_keys = folder, plot
        self.path = folder / METRICS_FILE
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None and self.path.exists():
            # Rows written after the checkpoint will be written again by the resumed run.
            lines = self.path.read_text().splitlines()
            self.rows = [r for r in map(json.loads, lines) if r.get("step", 0) <= resume_step]
            text = "".join(json.dumps(r) + "\n" for r in self.rows)
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=resume_step)

    def write(self, step: int, **values: float) -> None:
        row = {"step": step, **{k: v for k, v in values.items() if v is not None}}
        self.rows.append(row)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for label, key in self.plot_keys.items():
            points = [(r["step"], r[key]) for r in self.rows if key in r]
            if points:
                ax.plot(
                    *zip(*points, strict=True),
                    label=label,
                    marker="." if len(points) < 30 else None,
                )
        ax.set_xlabel("step")
        ax.set_ylabel(" / ".join(dict.fromkeys(self.plot_keys.values())))
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        atomic_write(self.folder / PLOT_FILE, lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)

    def close(self) -> None:
        self.writer.close()
