"""Masked-language-model pretraining throughput: attnlab's `MaskedLM` next to HuggingFace's
`BertForMaskedLM` of the same size, in the same process.

Both get BERT's layout (post-norm, GELU, LayerNorm epsilon 1e-12, an embedding LayerNorm,
learned positions, tied output), the same batch with the same masks (15 % chosen, 80/10/10),
no dropout, and the same AdamW (decay on matrices only). Tokens/s of one forward + backward +
AdamW step, over every input token. Rounds are interleaved in a rotated order; the table gives
medians, and ratios both of medians and paired within rounds (`benchmarks/throughput.py`).

A third row, "attnlab, head everywhere", runs attnlab's model with the output head at every
position, as HuggingFace's does, to show how much of the difference that one choice makes.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.mlm_throughput [--shape tiny|mini]
        [--json PATH]

Needs `transformers` (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import attnlab
from attnlab.data.masking import Masking
from attnlab.data.tokenizers import MLM_SPECIALS
from attnlab.models.mlm import IGNORE
from attnlab.tasks.mlm import BERT_LAYOUT
from benchmarks.throughput import Contender, Samples, adamw, count_parameters, rotate, table

# (vocab, context, depth, width, heads): the `train mlm --preset tiny` model, and BERT-mini's
# shape (Turc et al. 2019: 4 × 256, 4 heads) at context 128.
SHAPES = {"tiny": (4096, 128, 4, 128, 4), "mini": (8192, 128, 4, 256, 4)}


def ours(shape: tuple[int, ...]) -> attnlab.MaskedLM:
    vocab, context, depth, width, heads = shape
    cfg = attnlab.ModelConfig(vocab_size=vocab, context=context, depth=depth, width=width,
                              heads=heads, **BERT_LAYOUT)  # fmt: skip
    return attnlab.MaskedLM(cfg)


def hf_bert(shape: tuple[int, ...]) -> torch.nn.Module:
    from transformers import BertConfig, BertForMaskedLM

    vocab, context, depth, width, heads = shape
    cfg = BertConfig(
        vocab_size=vocab, hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads,
        intermediate_size=4 * width, max_position_embeddings=context, hidden_act="gelu",
        layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return BertForMaskedLM._from_config(cfg, attn_implementation="sdpa")


def batch(shape: tuple[int, ...], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows framed and masked as `train mlm` does, over a vocabulary whose last
    three ids are [CLS] [SEP] [MASK]."""
    vocab, context = shape[:2]
    generator = torch.Generator().manual_seed(0)
    specials = {name: vocab - 3 + i for i, name in enumerate(MLM_SPECIALS)}
    masking = Masking(SimpleNamespace(kind="ids", vocab_size=vocab, special_tokens=specials))
    windows = torch.randint(0, vocab - 3, (size, context - 2), generator=generator)
    return masking(masking.frame(windows)[0], None, generator)


def contenders(shape: tuple[int, ...]) -> list[Contender]:
    mlm, everywhere, bert = ours(shape), ours(shape), hf_bert(shape)

    def head_everywhere(x, y):
        logits = everywhere(x).float()
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE)

    found = [
        Contender("attnlab MaskedLM", mlm, lambda x, y: mlm.loss(x, None, y)[0]),
        Contender("attnlab, head everywhere", everywhere, head_everywhere),
        Contender("HF BertForMaskedLM", bert, lambda x, y: bert(input_ids=x, labels=y).loss),
    ]
    for c in found:
        c.optimizer = adamw(c.model)
        c.note = f"{count_parameters(c.model) / 1e6:.2f}M parameters"
    return found


def measure(cs: list[Contender], x, y, rounds: int, steps: int) -> dict[str, Samples]:
    results = {c.name: Samples() for c in cs}
    for c in cs:
        c.step(x, y)  # warm-up: allocator, optimiser state
    for r in range(rounds):
        for c in rotate(cs, r):
            start = time.perf_counter()
            for _ in range(steps):
                c.step(x, y)
            results[c.name].values.append(steps * x.numel() / (time.perf_counter() - start))
        line = ", ".join(f"{c.name} {results[c.name].values[r]:.0f}" for c in cs)
        print(f"  round {r + 1}/{rounds}: {line}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = SHAPES[args.shape]
    cs = contenders(shape)
    x, y = batch(shape, args.batch)
    samples = measure(cs, x, y, args.rounds, args.steps)
    title = (f"MLM training tokens/s, {args.shape} (vocab, context, depth, width, heads = "
             f"{shape}), batch {args.batch}, {args.threads} thread(s)")  # fmt: skip
    print(table(title, samples, "HF BertForMaskedLM"))
    import transformers

    result = {
        "shape": dict(zip(("vocab", "context", "depth", "width", "heads"), shape, strict=True)),
        "batch": args.batch, "threads": args.threads, "rounds": args.rounds, "steps": args.steps,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "machine": platform.processor() or platform.machine(),
        "parameters": {c.name: c.note for c in cs},
        "tokens_per_s": {name: s.row() for name, s in samples.items()},
    }  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
