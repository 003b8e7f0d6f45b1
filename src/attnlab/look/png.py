"""The page's views as PNG files (matplotlib), for papers and slides:

grid.png       every layer × head
average.png    each layer's head average, tokens on the axes
rollout.png    attention rollout up to each layer (Abnar & Zuidema 2020)
lines.png      the token-to-token view of the last layer's head average
exact.png      beside an approximation (Nyström): the first layer's Ŝ, softmax, difference
ponder.png / attribution.png   the Universal Transformer's steps, a classifier's attribution
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from ..io import atomic_write
from .maps import AttentionMaps

CMAP = "Blues"
LABELLED = 48  # tokens up to which the axes name every token


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def show(ax, m: Tensor, rows: list[str] | None = None, cols: list[str] | None = None, **kw):
    """One heatmap, shaded by √weight on one scale from 0 to 1 as on the page (small weights
    stay visible, and maps compare across panels); a signed one gives its own range."""
    if "vmin" not in kw:
        m = m.clamp(min=0).sqrt()
        kw.update(vmin=0.0, vmax=1.0)
    ax.imshow(m.numpy(), cmap=kw.pop("cmap", CMAP), interpolation="nearest", **kw)
    for labels, ticks, names in ((rows, ax.set_yticks, ax.set_yticklabels),
                                 (cols, ax.set_xticks, ax.set_xticklabels)):  # fmt: skip
        if labels is not None and len(labels) <= LABELLED:
            ticks(range(len(labels)))
            names(labels, fontsize=6, rotation=90 if names == ax.set_xticklabels else 0)
        else:
            ticks([])


def save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png"))
    pyplot().close(fig)
    return path


def write_pngs(
    maps: AttentionMaps, queries: list[str], keys: list[str], folder: str | os.PathLike
) -> list[Path]:
    """Write the views into `folder` (created if needed); returns the files written."""
    plt, folder = pyplot(), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    layers, heads = maps.layers, maps.heads
    weights = maps.stacked()[:, 0].cpu()  # (layers, h, t, s)
    fig, axes = plt.subplots(layers, heads, figsize=(1.1 * heads + 0.6, 1.1 * layers),
                             squeeze=False)  # fmt: skip
    for l in range(layers):
        for h in range(heads):
            show(axes[l][h], weights[l, h])
            axes[l][h].set_title(f"{maps.names[l]}, head {h + 1}", fontsize=5)
    written.append(save(fig, folder / "grid.png"))
    rows = [("average.png", "head average", maps.head_average()[:, 0].cpu(), keys)]
    rollout = maps.rollout()
    if rollout is not None:
        rows.append(("rollout.png", "rollout", rollout[:, 0].cpu(), queries))
    for name, what, stack, cols in rows:
        fig, axes = plt.subplots(1, layers, figsize=(3.2 * layers, 3.4), squeeze=False)
        for l in range(layers):
            show(axes[0][l], stack[l], queries, cols)
            axes[0][l].set_title(f"{what}, {maps.names[l]}", fontsize=8)
        written.append(save(fig, folder / name))
    written.append(lines_png(plt, maps.head_average()[-1, 0].cpu(), queries, keys, folder))
    if maps.exact is not None:
        exact = maps.exact[0][0].mean(dim=0).cpu()
        approx = weights[0].mean(dim=0)
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), squeeze=False)
        show(axes[0][0], approx.clamp(min=0))
        show(axes[0][1], exact)
        bound = (approx - exact).abs().max().item() or 1.0
        show(axes[0][2], approx - exact, cmap="RdBu_r", vmin=-bound, vmax=bound)
        for ax, title in zip(axes[0], ("Nyström Ŝ", "exact softmax", "difference"), strict=True):
            ax.set_title(f"{title}, {maps.names[0]}, head average", fontsize=8)
        written.append(save(fig, folder / "exact.png"))
    for name, values in (("ponder.png", maps.ponder), ("attribution.png", maps.attribution)):
        if values is not None:
            written.append(strip_png(plt, values[0].float().cpu(), queries, folder / name))
    return written


def lines_png(plt, m: Tensor, queries: list[str], keys: list[str], folder: Path) -> Path:
    """Queries on the left, keys on the right, a line per weight with the weight as opacity."""
    t, s = m.shape
    height = max(t, s)
    fig, ax = plt.subplots(figsize=(4, 0.16 * height + 0.6))
    from matplotlib.collections import LineCollection

    pairs = torch.nonzero(m >= 0.01)  # one line per weight worth seeing
    segments = [[(0, i), (1, j)] for i, j in pairs.tolist()]
    colours = torch.tensor([8 / 255, 48 / 255, 107 / 255, 1.0]).repeat(len(segments), 1)
    colours[:, 3] = m[pairs[:, 0], pairs[:, 1]].clamp(max=1)
    ax.add_collection(LineCollection(segments, colors=colours.numpy(), linewidths=0.8))
    for x, labels, align in ((0, queries, "right"), (1, keys, "left")):
        for n, text in enumerate(labels):
            ax.text(x + (0.02 if x else -0.02), n, text, ha=align, va="center", fontsize=6)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_xlim(-0.3, 1.3)
    ax.axis("off")
    return save(fig, folder / "lines.png")


def strip_png(plt, values: Tensor, labels: list[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(max(4, 0.25 * len(labels)), 1.2))
    ax.imshow(values[None].numpy(), cmap="Oranges", aspect="auto")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=6, rotation=90)
    ax.set_yticks([])
    return save(fig, path)
