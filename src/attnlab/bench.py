"""Speed and memory of one attention layer as the sequence grows.

`run_attention_bench` builds one `MultiHeadAttention` layer (batch 1, 8 heads of width 64,
so width 512, no positions, bidirectional) for each kind and length and measures:

- `ms`: the fastest of `repeats` (or more, see `measure_length`) forward+backward passes of
  the whole layer (projections, heads, core, unify), after one warm-up pass; the minimum
  is the least disturbed by other work on a shared machine. The backward pass starts from
  a dense random gradient, as in training (a gradient of `.sum()` is a stride-0 tensor that
  sends some CPU kernels down slow paths).
- `core_ms`: the same for the attention core alone (q, k, v -> out), the part in which the
  kinds differ; the projections cost the same for every kind.
- `peak_mib`: the peak of live tensor memory allocated during one forward+backward pass of
  the layer, above what was live before it (weights, input). On CUDA this is
  `torch.cuda.max_memory_allocated`. On CPU it is the running sum of the allocations and
  frees that `torch.profiler` records (`profile_memory=True`) through PyTorch's CPU
  allocator: tensors only, not the Python heap or the allocator's own slack.

Kinds: each registered core names its own (`Core.bench_kinds`): "dense-reference" (the
written-out softmax, n × n weights), "dense" (fused `scaled_dot_product_attention`),
"sparse-strided", "sparse-fixed" (c = 8 summaries) and "sparse-local" (block lengths ≈ √n,
≈ √(c·n), and a fixed window of 64), "nystrom-64" and "nystrom-256" (m landmarks, the default
convolution of 33 taps on the values), and so on for every core registered.

Before each run the memory it needs is estimated from its largest intermediate tensors;
a run above `memory_budget` is reported as skipped with that estimate, never started.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from .attention import MultiHeadAttention
from .config import ModelConfig
from .errors import UserError
from .registry import ATTENTION

LENGTHS = (512, 1024, 2048, 4096, 8192, 16384)
HEADS, HEAD_DIM = 8, 64
WIDTH = HEADS * HEAD_DIM
GIB = 2**30


def bench_kinds(n: int = 512) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every registered core's benchmark kinds at length n: label -> (core, its options)."""
    return {
        label: (name, options)
        for name, core in ATTENTION.items()
        for label, options in core.bench_kinds(n).items()
    }


def kind_config(kind: str, n: int) -> ModelConfig:
    """The layer settings a benchmark kind stands for, at sequence length n. Besides the
    registered kinds, "nystrom-M" takes any number M of landmarks."""
    kinds = bench_kinds(n)
    landmarks = kind.removeprefix("nystrom-")
    if kind.startswith("nystrom-") and landmarks.isdigit():
        kinds[kind] = ("nystrom", {"landmarks": int(landmarks)})
    if kind not in kinds:
        raise UserError(
            f"--kinds: unknown benchmark kind {kind!r}; known: {', '.join(kinds)} "
            "(or nystrom-M for M landmarks)"
        )
    core, options = kinds[kind]
    return ModelConfig(
        width=WIDTH, heads=HEADS, context=n, depth=1, position="none", attention=core,
        options={core: options},
    )  # fmt: skip


def keys_per_query(cfg: ModelConfig, n: int) -> int:
    """How many scores each query holds in the largest intermediate of its core."""
    core = ATTENTION[cfg.attention]
    return core.keys_per_query(cfg.options_for(core), n)


def estimated_bytes(cfg: ModelConfig, n: int) -> int:
    """A generous estimate of the peak memory of one forward+backward pass (float32).

    Score-shaped tensors (h·n·K): scores, masked scores, weights, and in the backward their
    gradients, about six alive at once; width-shaped ones (n·width): about thirty
    (q, k, v, outputs, their gradients, the projections' inputs and outputs).
    """
    return 4 * (6 * HEADS * n * keys_per_query(cfg, n) + 30 * n * WIDTH)


def default_budget() -> int:
    """Half the memory available now, at most 8 GiB: other work shares this machine."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        available = 16 * GIB
    return min(8 * GIB, available // 2)


def timed(step: Callable[[], None], device: torch.device) -> float:
    """Milliseconds one call of `step` takes."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - start)


def best_time(step: Callable[[], None], repeats: int, device: torch.device) -> float:
    """Fastest of `repeats` calls in milliseconds, after one warm-up call."""
    step()
    return min(timed(step, device) for _ in range(repeats))


def peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak of live tensor bytes allocated while `step` runs, above those live before it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
    ]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()  # positive for an allocation, negative for a free
        peak = max(peak, live)
    return peak


def steps(kind: str, n: int, device: torch.device) -> tuple[Callable[[], None], ...]:
    """Forward+backward of one layer of this kind, and of its core alone, on random inputs.

    Gradients are returned, not accumulated into .grad, so every call starts from the same
    memory and frees all it allocated.
    """
    layer = MultiHeadAttention(kind_config(kind, n)).to(device)
    x = torch.randn(1, n, WIDTH, device=device, requires_grad=True)
    grad_out = torch.randn(1, n, WIDTH, device=device)
    inputs = [x, *layer.parameters()]
    q, k, v = (
        torch.randn(1, HEADS, n, HEAD_DIM, device=device, requires_grad=True) for _ in range(3)
    )
    grad_core = torch.randn(1, HEADS, n, HEAD_DIM, device=device)

    def layer_step() -> None:
        torch.autograd.grad(layer(x), inputs, grad_out)

    def core_step() -> None:
        torch.autograd.grad(layer.core(q, k, v), [q, k, v], grad_core)

    return layer_step, core_step


def measure_length(n: int, kinds: list[str], device: torch.device, repeats: int) -> list[dict]:
    """Time every kind at one length in rounds, each round running every kind once, so a
    burst of other work on the machine slows all kinds alike and the minimum over rounds
    sees each at its best. Rounds go on past `repeats` while they take under two seconds."""
    torch.manual_seed(0)
    runs = {kind: steps(kind, n, device) for kind in kinds}
    for layer_step, core_step in runs.values():
        layer_step(), core_step()  # warm-up
    times: dict[str, tuple[list[float], list[float]]] = {kind: ([], []) for kind in kinds}
    started = time.perf_counter()
    rounds = 0
    while rounds < repeats or (time.perf_counter() - started < 2 and rounds < 20):
        for kind, (layer_step, core_step) in runs.items():
            times[kind][0].append(timed(layer_step, device))
            times[kind][1].append(timed(core_step, device))
        rounds += 1
    return [
        {
            "kind": kind,
            "n": n,
            "status": "ok",
            "ms": min(times[kind][0]),
            "core_ms": min(times[kind][1]),
            "peak_mib": peak_bytes(runs[kind][0], device) / 2**20,
        }
        for kind in kinds
    ]


def run_attention_bench(
    lengths: list[int],
    kinds: list[str],
    device: str = "cpu",
    repeats: int = 3,
    plot: Path | None = None,
    memory_budget: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """One row per (kind, n): `status` is "ok" with `ms`, `core_ms`, `peak_mib` (see the
    module docstring), or "skipped (would need X GiB)". `log` gets each row as it is done."""
    for kind in kinds:
        kind_config(kind, 512)  # unknown kinds fail before any long run
    target = torch.device(device)
    budget = default_budget() if memory_budget is None else memory_budget
    rows = []
    for n in lengths:
        need = {kind: estimated_bytes(kind_config(kind, n), n) for kind in kinds}
        fits = [kind for kind in kinds if need[kind] <= budget]
        done = {row["kind"]: row for row in measure_length(n, fits, target, repeats)}
        for kind in kinds:
            skipped = {"status": f"skipped (would need {need[kind] / GIB:.1f} GiB)"}
            row = done.get(kind, {"kind": kind, "n": n, **skipped})
            rows.append(row)
            if log is not None:
                log(format_row(row))
    if plot is not None:
        plot_rows(rows, plot)
    return rows


def loglog_slope(rows: list[dict], kind: str, key: str) -> float | None:
    """Least-squares slope of log(key) against log(n) over the measured rows of one kind:
    1 means linear growth, 2 quadratic."""
    points = [
        (math.log(r["n"]), math.log(r[key]))
        for r in rows
        if r["kind"] == kind and r["status"] == "ok"
    ]
    if len(points) < 2:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def format_row(row: dict) -> str:
    if row["status"] != "ok":
        return f"{row['kind']:<16} {row['n']:>6}  {row['status']}"
    return (
        f"{row['kind']:<16} {row['n']:>6} {row['ms']:>10.1f} {row['core_ms']:>10.1f} "
        f"{row['peak_mib']:>10.1f}"
    )


def format_table(rows: list[dict]) -> str:
    """The rows as a text table, then each kind's log-log slopes of time and memory."""
    header = f"{'kind':<16} {'n':>6} {'layer ms':>10} {'core ms':>10} {'peak MiB':>10}"
    lines = [header, "-" * len(header)]
    order = list(bench_kinds())
    rank = {kind: i for i, kind in enumerate(order)}
    lines += [
        format_row(row)
        for row in sorted(rows, key=lambda r: (rank.get(r["kind"], len(order)), r["n"]))
    ]
    lines += ["", "log-log slopes (1 = linear, 2 = quadratic):"]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        slopes = [loglog_slope(rows, kind, key) for key in ("ms", "core_ms", "peak_mib")]
        if slopes[0] is None:
            continue
        layer, core, memory = slopes
        lines.append(
            f"  {kind:<16} layer time {layer:.2f}  core time {core:.2f}  memory {memory:.2f}"
        )
    return "\n".join(lines)


def plot_rows(rows: list[dict], path: Path) -> None:
    """Log-log time and memory against n, one line per kind, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for kind in dict.fromkeys(r["kind"] for r in rows):
        done = [r for r in rows if r["kind"] == kind and r["status"] == "ok"]
        if not done:
            continue
        ns = [r["n"] for r in done]
        time_ax.plot(ns, [r["ms"] for r in done], marker="o", label=kind)
        memory_ax.plot(ns, [r["peak_mib"] for r in done], marker="o", label=kind)
    for ax, label in ((time_ax, "forward+backward (ms)"), (memory_ax, "peak memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    time_ax.legend(fontsize=8)
    fig.suptitle("one attention layer: batch 1, 8 heads × 64")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
