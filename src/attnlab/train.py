"""The one training loop, for every model kind.

A *task* supplies what differs between kinds: batches, the loss, evaluation, and the state of
its data order. The loop does the rest, the same for all: AdamW with weight decay on matrices
only, linear warm-up then cosine decay, gradient accumulation and clipping, mixed precision,
data parallelism under `torchrun`, progress, metrics, checkpoints, and the rules that no work
is lost: an interrupt saves, a non-finite loss stops with the last good checkpoint intact.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from .config import TrainConfig
from .errors import UserError
from .runs import MetricsLog, load_checkpoint, save_checkpoint


class Task(Protocol):
    plot: dict[str, str]  # curve label -> metric name, for the PNG
    held_out: tuple[str, ...]  # the splits scored at the end of training

    def next_batch(self) -> tuple: ...
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
class Distributed:
    """This process's place among `torchrun`'s processes (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", 1))
        if world == 1:
            return cls()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        return cls(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every process if it is true on any (so all stop at the same step)."""
        if self.world == 1:
            return flag
        value = torch.tensor(float(flag))
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def autocast_for(device: torch.device, precision: str):
    """The autocast context for a precision setting; fp32 means none."""
    if precision == "auto":
        gpu_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bf16" if gpu_bf16 else "fp32"
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW; weight decay on matrices only, never on biases, norms or embeddings' rows alone
    (the decay groups of GPT-2 and nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2), fused=fused)


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay from lr to min_lr as `progress`
    (the share of the step or time budget spent) goes from 0 to 1."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * cosine


@dataclass
class Progress:
    step: int = 0
    seconds: float = 0.0  # training time before this process started (after a resume)

    def fraction(self, cfg: TrainConfig, elapsed: float) -> float:
        by_steps = self.step / cfg.steps if cfg.steps else 0.0
        by_time = (self.seconds + elapsed) / (60 * cfg.minutes) if cfg.minutes else 0.0
        return max(by_steps, by_time)


class InterruptFlag:
    """Ctrl-C asks the loop to stop after the current step and save; a second Ctrl-C stops
    at once."""

    def __init__(self):
        self.raised = False

    def __enter__(self):
        # Only the main thread may install signal handlers; elsewhere Ctrl-C stays default.
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self.handle)
        return self

    def handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)


def train(
    model: nn.Module,
    task: Task,
    cfg: TrainConfig,
    folder: Path,
    device: torch.device,
    *,
    resume: bool = False,
    dist_info: Distributed | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train `model` on `task` until the step or time budget is spent; return a summary."""
    dist_info = dist_info or Distributed()
    optimizer = make_optimizer(model, cfg, device)
    progress = Progress()
    if resume:
        extra, meta = load_checkpoint(folder, model, optimizer)
        task.load_state_dict({k[len("task.") :]: v for k, v in extra.items()})
        progress = Progress(meta["step"], meta["seconds"])
        log(f"resumed {folder} at step {progress.step}")
    objective: nn.Module = Objective(model)
    if dist_info.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        objective = nn.parallel.DistributedDataParallel(objective, device_ids=ids)
    if cfg.compile:
        objective = torch.compile(objective)
    autocast = autocast_for(device, cfg.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    metrics = (
        MetricsLog(folder, task.plot, progress.step if resume else None) if dist_info.main else None
    )

    def checkpoint() -> None:
        if dist_info.main:
            state = {f"task.{k}": v for k, v in task.state_dict().items()}
            meta = {"step": progress.step, "seconds": progress.seconds + elapsed()}
            save_checkpoint(folder, model, optimizer, state, meta)

    def evaluate(quick: bool) -> dict[str, float]:
        with autocast:
            result = task.evaluate(model, "valid", quick)
        if metrics:
            metrics.write(progress.step, **result)
            metrics.plot()
        return result

    started = time.perf_counter()
    elapsed = lambda: time.perf_counter() - started  # noqa: E731
    bar = tqdm(
        total=100,
        disable=not dist_info.main,
        bar_format="{percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
        dynamic_ncols=True,
        mininterval=1.0,
    )
    bar.update(min(100.0, 100 * progress.fraction(cfg, 0)))
    window_loss, window_tokens, window_start = [], 0, time.perf_counter()
    stopped = "budget"
    model.train()
    with InterruptFlag() as interrupt:
        while progress.fraction(cfg, elapsed()) < 1:
            lr = learning_rate(cfg, progress.step, progress.fraction(cfg, elapsed()))
            for group in optimizer.param_groups:
                group["lr"] = lr
            stats: dict[str, float] = {}
            for micro in range(cfg.accumulate):
                batch = task.next_batch()
                last = micro == cfg.accumulate - 1
                sync = nullcontext() if last or dist_info.world == 1 else objective.no_sync()
                with sync:
                    with autocast:
                        loss, stats = task.loss(objective, batch)
                    scaler.scale(loss / cfg.accumulate).backward()
                window_tokens += task.tokens_in(batch) * dist_info.world
                window_loss.append(loss.item())
            if dist_info.any(not all(map(math.isfinite, window_loss[-cfg.accumulate :]))):
                bar.close()
                raise TrainingDiverged(
                    f"the loss became {window_loss[-1]} at step {progress.step + 1}; stopped "
                    f"without saving, so {folder} keeps the last good checkpoint. Try a lower "
                    "--lr or --precision fp32"
                )
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            if progress.step % 10 == 0 or progress.step == cfg.steps:
                rate = window_tokens / (time.perf_counter() - window_start)
                train_loss = sum(window_loss) / len(window_loss)
                if metrics:
                    metrics.write(
                        progress.step,
                        lr=lr,
                        loss=train_loss,
                        tokens_per_s=rate,
                        **task.train_metrics(train_loss),
                        **stats,
                    )
                bar.set_postfix_str(
                    f"step {progress.step} loss {train_loss:.3f} {rate:,.0f} tok/s", refresh=False
                )
                window_loss, window_tokens, window_start = [], 0, time.perf_counter()
            bar.update(min(100.0, 100 * progress.fraction(cfg, elapsed())) - bar.n)
            if progress.step % cfg.eval_every == 0 and dist_info.main:
                bar.write(format_metrics(progress.step, evaluate(quick=True)))
            if progress.step % cfg.save_every == 0:
                checkpoint()
            if dist_info.any(interrupt.raised):
                stopped = "interrupt"
                break
    bar.close()
    checkpoint()
    if metrics:
        metrics.close()
    return {"step": progress.step, "seconds": progress.seconds + elapsed(), "stopped": stopped}


def format_metrics(step: int, result: dict[str, float]) -> str:
    shown = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
    )
    return f"step {step}: {shown}"
