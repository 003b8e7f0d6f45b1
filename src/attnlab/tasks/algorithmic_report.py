"""Scoring a model on an algorithmic task at one length, and the two pictures of a run: bit
error against length (the NTM paper's generalisation figures) and the memory weightings of one
example over time (its memory-access figures, §4.1-4.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.algorithmic import Batch, Layout, generate
from ..io import atomic_write
from ..models.sequence import bits_wrong


@torch.no_grad()
def score(
    model: nn.Module,
    layout: Layout,
    length: int,
    sequences: int,
    seed: int,
    batch_size: int,
    repeats: int = 1,
) -> dict[str, Any]:
    """Bit error per sequence (bits wrong, averaged over sequences) and sequence accuracy
    (the share with no bit wrong) over `sequences` sequences drawn with `seed`."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    wrong, perfect = 0, 0
    for start in range(0, sequences, batch_size):
        count = min(batch_size, sequences - start)
        batch = generate(layout, count, length, generator, repeats).to(device)
        logits = model(batch.inputs)[:, batch.scored].float()
        errors = bits_wrong(logits, batch.targets[:, batch.scored])
        wrong += int(errors.sum())
        perfect += int((errors == 0).sum())
    model.train(was_training)
    return {
        "length": length,
        "bit_error_per_sequence": wrong / sequences,
        "sequence_accuracy": perfect / sequences,
        "sequences": sequences,
    }


def plot_bit_error(
    curves: dict[str, list[dict[str, Any]]],
    trained: tuple[int, int],
    path: Path,
    title: str,
    xlabel: str = "length",
) -> Path:
    """Bit error per sequence against length, one curve per model (label -> rows of `score`),
    the training range shaded."""
    from matplotlib.figure import Figure  # here: matplotlib takes a while to import

    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    ax.axvspan(trained[0] - 0.5, trained[1] + 0.5, color="0.85", label="training lengths")
    for label, rows in curves.items():
        rows = sorted(rows, key=lambda row: row["length"])
        ax.plot([r["length"] for r in rows], [r["bit_error_per_sequence"] for r in rows],
                marker="o", label=label)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("bit error per sequence")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


@torch.no_grad()
def plot_memory(model: nn.Module, batch: Batch, path: Path, title: str) -> Path | None:
    """One example's inputs, targets, outputs (probabilities) and every head's write and read
    weighting over time, slots against steps, black for 1 and white for 0; None for a model
    without memory."""
    weightings = model.memory_weightings(batch.inputs[:1])
    if not weightings:
        return None
    from matplotlib.figure import Figure

    outputs = torch.sigmoid(model(batch.inputs[:1]))[0]
    panels = {"inputs": batch.inputs[0], "targets": batch.targets[0], "outputs": outputs}
    for kind in ("write", "read"):
        for head in range(weightings[kind].shape[2]):
            panels[f"{kind} weighting, head {head + 1}"] = weightings[kind][0, :, head]
    fig = Figure(figsize=(7, 2.2 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, values) in zip(axes, panels.items(), strict=True):
        ax.imshow(values.T.float().cpu().numpy(), aspect="auto", cmap="gray_r", vmin=0, vmax=1,
                  interpolation="nearest", origin="lower")  # fmt: skip
        ax.set_ylabel("slot" if "weighting" in label else "channel")
        ax.set_title(label, fontsize=9)
    axes[-1].set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
