"""Metrics of a run as JSON lines, TensorBoard events, and a PNG of the curves."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..io import atomic_write, write_text

# Metrics whose names end so are shares (0 to 1); they get an axis of their own.
SHARES = ("accuracy", "f1", "exact_match")


def read_rows(path: Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """The rows of a metrics file, up to a step; a line cut short by a crash is skipped."""
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and (up_to_step is None or row.get("step", 0) <= up_to_step):
                rows.append(row)
    return rows


class MetricsLog:
    """Appends rows to `path` (JSON lines) and to TensorBoard; draws `plot` (curve label ->
    metric name) into `plot_path`. Resuming at a step drops what was written after it, which
    the resumed run writes again."""

    def __init__(
        self,
        path: Path,
        tensorboard: Path,
        plot_path: Path,
        plot: dict[str, str],
        resume_step: int | None = None,
    ):
        self.path, self.plot_path, self.plot_keys = path, plot_path, plot
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None:
            self.rows = read_rows(path, resume_step)
            write_text(path, "".join(json.dumps(r) + "\n" for r in self.rows))
        from torch.utils.tensorboard import SummaryWriter

        # Points after the resume step are dropped; those of the step itself stay.
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(tensorboard), purge_step=purge)

    def write(self, step: int, **values: Any) -> None:
        row = {"step": step, **{k: v for k, v in values.items() if v is not None}}
        self.rows.append(row)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def plot(self) -> None:
        """Curves against steps: losses and bits on the left, shares (accuracy) on the right."""
        from matplotlib.figure import Figure  # here: matplotlib takes a while to import

        curves = {
            label: [(r["step"], r[key]) for r in self.rows if key in r]
            for label, key in self.plot_keys.items()
        }
        groups = [
            [(label, key) for label, key in self.plot_keys.items() if key.endswith(SHARES) == s]
            for s in (False, True)
        ]
        groups = [g for g in groups if any(curves[label] for label, _ in g)]
        if not groups:
            return
        fig = Figure(figsize=(6 * len(groups), 4))
        for ax, group in zip(fig.subplots(1, len(groups), squeeze=False)[0], groups, strict=True):
            for label, _ in group:
                if curves[label]:
                    points = curves[label]
                    marker = "." if len(points) < 30 else None
                    ax.plot(*zip(*points, strict=True), label=label, marker=marker)
            ax.set_xlabel("step")
            ax.set_ylabel(" / ".join(dict.fromkeys(key for _, key in group)))
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        atomic_write(self.plot_path, lambda tmp: fig.savefig(tmp, format="png"))

    def close(self) -> None:
        self.writer.close()
