"""attnlab's training against HuggingFace GPT-2 trained by a plain loop: the same model size,
data, batches, learning-rate schedule and wall-clock budget; both scored by the same exact
bits-per-byte evaluation of the whole validation split.

    .venv/bin/python -m benchmarks.vs_gpt2 [--minutes 3]      (needs: pip install transformers)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from attnlab import LanguageModel, ModelConfig
from attnlab.config import PRESETS, TrainConfig
from attnlab.data.windows import RandomWindows
from attnlab.evaluate import bits_per_byte
from attnlab.runs import prepare_folder
from attnlab.tasks.lm import LanguageModelTask, prepare_text
from attnlab.train import learning_rate, make_optimizer, train

CPU = torch.device("cpu")


class GPT2(nn.Module):
    """HuggingFace GPT-2 seen through attnlab's evaluation interface: tokens -> logits."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        self.cfg = SimpleNamespace(context=cfg.context, model="transformer")
        self.gpt2 = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=cfg.vocab_size, n_positions=cfg.context, n_embd=cfg.width,
                n_layer=cfg.depth, n_head=cfg.heads, resid_pdrop=0.0, embd_pdrop=0.0,
                attn_pdrop=0.0, attn_implementation="sdpa",
            )
        )  # fmt: skip

    def forward(self, tokens):
        return self.gpt2(tokens).logits


def train_plainly(model: nn.Module, cfg: TrainConfig, tokens, context: int) -> int:
    """The plain loop: random windows, AdamW, warm-up and cosine, clipping; no extras."""
    optimizer = make_optimizer(model, cfg, CPU)
    batches = RandomWindows(tokens, context, cfg.batch_size, cfg.seed)
    started, step = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - started) < 60 * cfg.minutes:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step, elapsed / (60 * cfg.minutes))
        x, y = next(batches)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-gpt2"))
    args = parser.parse_args()
    preset = PRESETS["tiny"]
    cfg = TrainConfig(**{**preset["train"], "minutes": args.minutes, "eval_every": 10**9})
    text, _ = prepare_text(cfg, 256)
    model_cfg = ModelConfig(**preset["model"], activation="gelu")  # GPT-2 uses GELU
    rows = []
    torch.manual_seed(0)
    ours = LanguageModel(model_cfg)
    folder = prepare_folder(args.out / "attnlab", resume=False, overwrite=True)
    task = LanguageModelTask(text, model_cfg, cfg, CPU)
    summary = train(ours, task, cfg, folder, CPU)
    torch.manual_seed(0)
    theirs = GPT2(model_cfg)
    steps = train_plainly(theirs, cfg, text.tokens["train"], model_cfg.context)
    for name, model, n in (("attnlab", ours, summary["step"]), ("HF GPT-2", theirs, steps)):
        result = bits_per_byte(model, text.tokens["valid"], batch_size=64)
        rows.append({
            "model": name, "parameters": sum(p.numel() for p in model.parameters()),
            "steps": n, "valid bpb": round(result["bits_per_byte"], 4), "bytes": result["bytes"],
        })  # fmt: skip
        print(rows[-1], flush=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
