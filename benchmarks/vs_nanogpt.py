"""attnlab's `tiny` preset against nanoGPT's documented CPU recipe, the "baby GPT" of its
README (4 layers × 128, 4 heads, context 64, batch 12, lr 1e-3 with 100 warm-up steps and
cosine decay to 1e-4, AdamW β2 0.99, weight decay 0.1, clipping at 1, no dropout), trained on
the same bytes of the default corpus for the same minutes, and scored by the same evaluation
on the same test bytes.

The baby GPT is written out here in nanoGPT's shape (pre-LayerNorm blocks with biases, GELU,
learned positions, tied embeddings, N(0, 0.02) initialisation with the residual projections
scaled by 1/√(2·layers)) and trained by a plain loop, so nothing of attnlab's recipe helps it.

    .venv/bin/python -m benchmarks.vs_nanogpt [--minutes M] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.config import TrainConfig
from attnlab.data.tokenizers import ByteTokenizer
from attnlab.evaluate import bits_per_byte
from attnlab.tasks.lm import PRESETS, TextData, encode_splits, read_splits
from benchmarks.common import attnlab, results_of
from benchmarks.vs_gpt2 import train_plainly

BABY = dict(layers=4, heads=4, width=128, context=64, batch=12, lr=1e-3)


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.c_attn, self.c_proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        hidden = 4 * width
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).view(b, t, 3, self.heads, c // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=True)  # fmt: skip
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln_2(x))


class BabyGPT(nn.Module):
    """tokens (b, t) -> logits (b, t, 256), nanoGPT's GPT at the baby settings."""

    def __init__(self, layers: int, heads: int, width: int, context: int, vocab: int = 256):
        super().__init__()
        self.cfg = SimpleNamespace(context=context, model="transformer")  # for the evaluation
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                residual = name.endswith(("c_proj.weight", "mlp.2.weight"))
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers) if residual else 0.02)

    def forward(self, tokens: Tensor, state=None, last: int | None = None) -> Tensor:
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        x = x if last is None else x[:, -last:]
        return self.lm_head(self.ln_f(x))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=PRESETS["tiny"]["train"]["minutes"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-nanogpt"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    folder = args.out / "attnlab-tiny"
    args.out.mkdir(parents=True, exist_ok=True)
    attnlab("train", "lm", "--preset", "tiny", "--minutes", args.minutes, "--seed", args.seed,
            "--sample-tokens", 0, "--out", folder, "--overwrite",
            log=args.out / "tiny.log")  # fmt: skip
    ours = results_of(folder)
    rows.append({"model": "attnlab --preset tiny", "steps": ours["step"],
                 "test bpb": round(ours["test_bpb"], 4), "bytes": ours["test_bytes"]})  # fmt: skip
    print(rows[-1], flush=True)

    torch.manual_seed(args.seed)
    text = encode_splits(read_splits(TextData()), ByteTokenizer())
    baby = BabyGPT(BABY["layers"], BABY["heads"], BABY["width"], BABY["context"])
    cfg = TrainConfig(minutes=args.minutes, batch_size=BABY["batch"], lr=BABY["lr"],
                      min_lr=1e-4, warmup=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0,
                      seed=args.seed)  # fmt: skip
    steps = train_plainly(baby, cfg, text.tokens["train"], BABY["context"])
    result = bits_per_byte(baby, text.tokens["test"], batch_size=64)
    rows.append({"model": "nanoGPT baby GPT (plain loop)", "steps": steps,
                 "test bpb": round(result["bits_per_byte"], 4),
                 "bytes": result["bytes"]})  # fmt: skip
    print(rows[-1], flush=True)
    print(f"attnlab lower by {rows[1]['test bpb'] - rows[0]['test bpb']:.4f} bits per byte")
    if args.json:
        args.json.write_text(json.dumps({"minutes": args.minutes, "seed": args.seed,
                                         "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
