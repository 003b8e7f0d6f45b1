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

import attnlab
from attnlab.cli import main as attnlab_main
from attnlab.config import ModelConfig, TrainConfig
from attnlab.data.tokenizers import ByteTokenizer
from attnlab.data.windows import RandomWindows
from attnlab.evaluate import bits_per_byte
from attnlab.tasks.lm import TextData, encode_splits, read_splits
from attnlab.training.optim import learning_rate, make_optimizer

CPU = torch.device("cpu")
# The tiny preset as it was before its recipe (bytes, AdamW, cosine), with GPT-2's GELU: the
# settings this comparison was measured with.
GPT2_LIKE = {
    "model": dict(context=128, depth=4, width=128, heads=4, activation="gelu"),
    "train": dict(batch_size=16, lr=4e-3, warmup=30),
}


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

    def forward(self, tokens, state=None, last=None):
        logits = self.gpt2(tokens).logits
        return logits if last is None else logits[:, -last:]


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
    cfg = TrainConfig(**{**GPT2_LIKE["train"], "minutes": args.minutes, "eval_every": 10**9})
    text = encode_splits(read_splits(TextData()), ByteTokenizer())
    model_cfg = ModelConfig(**GPT2_LIKE["model"])
    rows = []
    folder = args.out / "attnlab"
    # attnlab through its own command: GPT-2's architecture and AdamW, the same minutes.
    flags = [f"--{k.replace('_', '-')}={v}" for part in GPT2_LIKE.values() for k, v in part.items()]
    attnlab_main(["train", "lm", *flags, "--minutes", str(args.minutes), "--eval-every",
                  str(10**9), "--sample-tokens", "0", "--out", str(folder),
                  "--overwrite"])  # fmt: skip
    ours = attnlab.load(folder)
    ours_steps = json.loads((folder / "results.json").read_text())["step"]
    torch.manual_seed(0)
    theirs = GPT2(model_cfg)
    steps = train_plainly(theirs, cfg, text.tokens["train"], model_cfg.context)
    for name, model, n in (("attnlab", ours, ours_steps), ("HF GPT-2", theirs, steps)):
        result = bits_per_byte(model, text.tokens["valid"], batch_size=64)
        rows.append({
            "model": name, "parameters": sum(p.numel() for p in model.parameters()),
            "steps": n, "valid bpb": round(result["bits_per_byte"], 4), "bytes": result["bytes"],
        })  # fmt: skip
        print(rows[-1], flush=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
