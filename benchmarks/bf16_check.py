"""Does bf16 autocast change what the language model learns? An A/B training run.

Two runs from the same initial weights see the same batches of the default byte corpus
(`stdlib`) with the same optimiser and schedule (those of `attnlab train`: AdamW with decay
on matrices, warm-up then cosine, gradient clipping); one runs the forward pass under
`torch.autocast(dtype=torch.bfloat16)`, the other in fp32. The check compares their
training-loss curves (mean of the last 50 steps, largest per-step gap) and scores both on
the same held-out windows in fp32.

    python benchmarks/bf16_check.py [--steps 300] [--json PATH]

bf16 keeps 8 bits of mantissa, so single losses differ by ~1e-2; what matters is whether
the curves drift apart. The check passes when the final means differ by less than
`--tolerance` nats (default 0.02, about 1% of a byte-level loss of 2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

import attnlab
from attnlab.config import TrainConfig
from attnlab.data.text import load_text
from attnlab.data.windows import RandomWindows
from attnlab.device import autocast_for
from attnlab.training.optim import learning_rate, make_optimizer

SHAPE = dict(vocab_size=256, context=128, depth=4, width=128, heads=4)


def run(precision: str, steps: int, batch: int, corpus: dict[str, np.ndarray], seed: int) -> dict:
    """Train from seed `seed` and return the per-step losses and the held-out loss."""
    torch.manual_seed(seed)
    cpu = torch.device("cpu")
    model = attnlab.LanguageModel(attnlab.ModelConfig(**SHAPE))
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=2e-3, warmup=50)
    optimizer = make_optimizer(model, cfg, cpu)
    autocast = autocast_for(cpu, precision)
    batches = RandomWindows(corpus["train"], SHAPE["context"], batch, seed=seed)
    losses = []
    started = time.perf_counter()
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step, step / steps)
        x, y = next(batches)
        with autocast:
            loss, _ = model.loss(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"  {precision} step {step + 1}: loss {losses[-1]:.3f}", file=sys.stderr)
    seconds = time.perf_counter() - started
    model.eval()
    held_out = RandomWindows(corpus["valid"], SHAPE["context"], 64, seed=seed + 1)
    with torch.no_grad():
        valid = statistics.mean(model.loss(*next(held_out))[0].item() for _ in range(4))
    return {"losses": losses, "valid_loss_fp32": valid, "seconds": seconds}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--json", help="write the curves and the verdict to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = load_text("stdlib")
    corpus = {s: np.frombuffer(splits[s], dtype=np.uint8) for s in ("train", "valid")}

    runs = {p: run(p, args.steps, args.batch, corpus, args.seed) for p in ("fp32", "bf16")}
    a, b = runs["fp32"]["losses"], runs["bf16"]["losses"]
    tail = min(50, args.steps)
    gaps = [abs(x - y) for x, y in zip(a, b, strict=True)]
    summary = {
        "shape": SHAPE,
        "steps": args.steps,
        "batch": args.batch,
        "last50_mean": {"fp32": statistics.mean(a[-tail:]), "bf16": statistics.mean(b[-tail:])},
        "max_step_gap": max(gaps),
        "max_step_gap_at": gaps.index(max(gaps)) + 1,
        "mean_step_gap": statistics.mean(gaps),
        "valid_loss_fp32": {p: r["valid_loss_fp32"] for p, r in runs.items()},
        "seconds": {p: r["seconds"] for p, r in runs.items()},
    }
    difference = summary["last50_mean"]["bf16"] - summary["last50_mean"]["fp32"]
    summary["last50_difference"] = difference
    summary["matches"] = abs(difference) < args.tolerance

    print(f"model {SHAPE}, {args.steps} steps of batch {args.batch}, seed {args.seed}")
    print(f"{'':6} {'last-50 mean':>13} {'held-out':>9} {'seconds':>8}")
    for p in ("fp32", "bf16"):
        print(
            f"{p:6} {summary['last50_mean'][p]:13.4f} {summary['valid_loss_fp32'][p]:9.4f} "
            f"{summary['seconds'][p]:8.1f}"
        )
    print(
        f"last-50 difference {difference:+.4f} nats; per-step gap: max "
        f"{summary['max_step_gap']:.4f} (step {summary['max_step_gap_at']}), "
        f"mean {summary['mean_step_gap']:.4f}"
    )
    verdict = "matches" if summary["matches"] else "does NOT match"
    print(f"bf16 {verdict} fp32 within {args.tolerance} nats")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**summary, "losses": {p: r["losses"] for p, r in runs.items()}}, f)
    return summary


if __name__ == "__main__":
    main()
