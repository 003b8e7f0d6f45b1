"""The one training loop, for every model kind.

A *task* supplies what differs between kinds: batches, the loss, evaluation, and the state of
its data order. The loop does what is the same for all: the optimiser step with gradient
accumulation, clipping and mixed precision, data parallelism under `torchrun`, and the rule
that a non-finite loss stops the run before anything is saved. Everything else (progress,
metrics, evaluation, checkpoints, interrupts) is a callback it calls after each step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..config import TrainConfig
from ..device import autocast_for, grad_scaler
from ..errors import UserError
from .distributed import Distributed
from .optim import budget_fraction, make_optimizer, make_schedule

REPORT_EVERY = 10  # steps between the train-loss reports (metrics, progress)


class Task(Protocol):
    """What the loop needs of a task."""

    plot: dict[str, str]  # curve label -> metric name, for the PNG
    held_out: tuple[str, ...]  # the splits scored at the end of training

    def next_batch(self, progress: float) -> tuple: ...  # progress: budget share spent
    def loss(self, objective: nn.Module, batch: tuple) -> tuple[Tensor, dict[str, float]]: ...
    def tokens_in(self, batch: tuple) -> int: ...
    def train_metrics(self, loss: float) -> dict[str, float]: ...
    def evaluate(self, model: nn.Module, split: str, quick: bool) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Tensor]: ...
    def load_state_dict(self, state: dict[str, Tensor]) -> None: ...


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


class Objective(nn.Module):
    """The model's loss as a module, so DistributedDataParallel and torch.compile wrap the
    whole computation; the model's own forward stays `tokens -> logits`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *batch: Any, **options: Any) -> tuple[Tensor, dict[str, float]]:
        return self.model.loss(*batch, **options)


@dataclass
class Run:
    """A training run in progress: what callbacks read and may change (`stop`)."""

    model: nn.Module
    task: Task
    cfg: TrainConfig
    optimizer: torch.optim.Optimizer
    device: torch.device
    dist: Distributed
    step: int = 0
    seconds_before: float = 0.0  # training time of earlier processes (a resumed run)
    started: float = field(default_factory=time.perf_counter)
    lr: float = 0.0
    report: dict[str, float] | None = None  # the train metrics, every REPORT_EVERY steps
    stop: str | None = None  # why to stop early ("interrupt"), set by a callback

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    @property
    def fraction(self) -> float:
        return budget_fraction(self.cfg, self.step, self.seconds)

    def autocast(self):
        return autocast_for(self.device, self.cfg.precision)


class Callback:
    """Called by the loop: `start` before the first step, `step` after each, `end` after the
    last (not after a divergence), `close` always."""

    def start(self, run: Run) -> None: ...
    def step(self, run: Run) -> None: ...
    def end(self, run: Run) -> None: ...
    def close(self, run: Run) -> None: ...


def train(
    model: nn.Module,
    task: Task,
    cfg: TrainConfig,
    device: torch.device,
    callbacks: Iterable[Callback] = (),
    dist: Distributed | None = None,
) -> Run:
    """Train `model` on `task` until the budget is spent or a callback stops the run."""
    callbacks = list(callbacks)
    run = Run(model, task, cfg, make_optimizer(model, cfg, device), device, dist or Distributed())
    try:
        for callback in callbacks:
            callback.start(run)
        step = optimizer_step(run)
        schedule = make_schedule(cfg, model)
        run.started = time.perf_counter()  # the clock runs from the first step
        window: list[tuple[float, int]] = []  # (loss, tokens) of the steps since the last report
        window_started = time.perf_counter()
        model.train()
        while run.fraction < 1 and run.stop is None:
            run.lr = schedule(run.step, run.fraction)
            loss, tokens, stats = step()
            run.step += 1
            window.append((loss, tokens))
            run.report = None
            if run.step % REPORT_EVERY == 0 or run.step == cfg.steps:
                mean_loss = sum(x for x, _ in window) / len(window)
                rate = sum(n for _, n in window) / (time.perf_counter() - window_started)
                run.report = {"lr": run.lr, "loss": mean_loss, "tokens_per_s": rate,
                              **task.train_metrics(mean_loss), **stats}  # fmt: skip
                window = []
            for callback in callbacks:
                callback.step(run)
            if run.report:
                window_started = time.perf_counter()  # evaluation time is not training time
            if run.dist.any(run.stop is not None):
                run.stop = run.stop or "interrupt"
        for callback in callbacks:
            callback.end(run)
    finally:
        for callback in callbacks:
            callback.close(run)
    return run


def optimizer_step(run: Run):
    """A function doing one optimiser step (all micro-batches), returning the mean loss, the
    tokens seen by all processes and the task's statistics."""
    cfg, task = run.cfg, run.task
    objective: nn.Module = Objective(run.model)
    if run.dist.world > 1:
        ids = [run.device.index] if run.device.type == "cuda" else None
        objective = nn.parallel.DistributedDataParallel(objective, device_ids=ids)
    if cfg.compile:
        objective = torch.compile(objective)
    scaler = grad_scaler(run.device, cfg.precision)
    autocast = run.autocast()

    def step() -> tuple[float, int, dict[str, float]]:
        for group in run.optimizer.param_groups:
            group["lr"] = run.lr * group.get("lr_scale", 1.0)  # a group may scale the schedule
        losses, tokens, stats = [], 0, {}
        for micro in range(cfg.accumulate):
            batch = task.next_batch(run.fraction)
            last = micro == cfg.accumulate - 1
            sync = nullcontext() if last or run.dist.world == 1 else objective.no_sync()
            with sync:
                with autocast:
                    loss, stats = task.loss(objective, batch)
                scaler.scale(loss / cfg.accumulate).backward()
            tokens += task.tokens_in(batch) * run.dist.world
            losses.append(loss.item())
        if run.dist.any(not all(map(math.isfinite, losses))):
            raise TrainingDiverged(
                f"the loss became {losses[-1]} at step {run.step + 1}; stopped without saving, "
                "so the run folder keeps the last good checkpoint. Try a lower --lr or --precision "
                "fp32"
            )
        if cfg.grad_clip > 0:
            scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        scaler.step(run.optimizer)
        scaler.update()
        run.optimizer.zero_grad(set_to_none=True)
        return sum(losses) / len(losses), tokens, stats

    return step


def format_metrics(step: int, result: dict[str, Any]) -> str:
    shown = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
    )
    return f"step {step}: {shown}"
