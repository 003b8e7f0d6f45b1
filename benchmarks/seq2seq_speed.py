"""Speed of attnlab's encoder-decoder at the shape of the paper's base model (6 + 6 blocks,
width 512, feed-forward 2048, 8 heads, post-norm, dropout 0.1; vocabulary 8,000):

- training: one forward + backward + AdamW step on a small batch, against
  `torch.nn.Transformer` of the same sizes with the same embeddings, positions, tied output
  layer, label-smoothed loss and optimiser. Rounds alternate which model goes first; the
  figure is the median over rounds of the paired ratio (nn.Transformer's time / attnlab's);
- decoding: beam 4 against greedy, forced to the same number of tokens (EOS refused until
  `--new` tokens), and, when `transformers` is installed, against HuggingFace's `generate`
  with 4 beams on a Marian model of the same sizes (random weights, same forced length).

    python -m benchmarks.seq2seq_speed [--rounds 5] [--batch 8] [--length 16] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnlab
from attnlab.positions.base import sinusoidal_table

VOCAB, DEPTH, WIDTH, FF, HEADS, DROPOUT = 8000, 6, 512, 2048, 8, 0.1
SMOOTHING = 0.1


def base_config(context: int) -> attnlab.ModelConfig:
    return attnlab.ModelConfig(vocab_size=VOCAB, context=context, depth=DEPTH, width=WIDTH,
                               heads=HEADS, ff_mult=FF // WIDTH, dropout=DROPOUT, norm="post",
                               position="sinusoidal")  # fmt: skip


class TorchTransformer(nn.Module):
    """nn.Transformer with the paper's embedding: tied, scaled by √d, plus sinusoids."""

    def __init__(self, context: int):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, WIDTH)
        self.register_buffer("positions", sinusoidal_table(context, WIDTH))
        self.transformer = nn.Transformer(WIDTH, HEADS, DEPTH, DEPTH, FF, DROPOUT,
                                          batch_first=True)  # fmt: skip
        self.dropout = nn.Dropout(DROPOUT)

    def embed(self, tokens: Tensor) -> Tensor:
        x = self.embedding(tokens) * math.sqrt(WIDTH) + self.positions[: tokens.shape[1]]
        return self.dropout(x)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1])
        out = self.transformer(self.embed(src), self.embed(tgt_in), tgt_mask=causal,
                               tgt_is_causal=True)  # fmt: skip
        return out @ self.embedding.weight.T


def training_step(model: nn.Module, loss: Callable[[], Tensor]) -> Callable[[], float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98))

    def step() -> float:
        started = time.perf_counter()
        loss().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    return step


def train_speed(rounds: int, batch: int, length: int) -> dict:
    src = torch.randint(0, VOCAB - 2, (batch, length))
    tgt = torch.randint(0, VOCAB - 2, (batch, length + 1))
    ours = attnlab.Seq2Seq(base_config(length + 1)).train()
    theirs = TorchTransformer(length + 1).train()
    mask = torch.ones(batch, length, dtype=torch.bool)
    steps = {
        "attnlab": training_step(ours, lambda: ours.loss(src, mask, tgt[:, :-1], tgt[:, 1:],
                                                         SMOOTHING)[0]),
        "torch.nn.Transformer": training_step(theirs, lambda: F.cross_entropy(
            theirs(src, tgt[:, :-1]).flatten(0, 1), tgt[:, 1:].flatten(),
            label_smoothing=SMOOTHING)),
    }  # fmt: skip
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        for name in list(steps)[:: 1 if r % 2 else -1]:
            times[name].append(steps[name]())
    ratios = [t / a for a, t in zip(times["attnlab"], times["torch.nn.Transformer"], strict=True)]
    params = {name: sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())
              for name, m in (("attnlab", ours), ("torch.nn.Transformer", theirs))}  # fmt: skip
    tokens = batch * (2 * length + 1)
    return {
        "batch": batch, "length": length, "parameters": params,
        "seconds": {name: statistics.median(t) for name, t in times.items()},
        "tokens_per_s": {name: tokens / statistics.median(t) for name, t in times.items()},
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
        "ratio_max": max(ratios), "raw_seconds": times,
    }  # fmt: skip


def hf_generate(batch: int, length: int, new: int) -> Callable[[Tensor], float] | None:
    """A Marian model of the base shape with `generate(num_beams=4)`, or None without
    `transformers`."""
    try:
        from transformers import MarianConfig, MarianMTModel
    except ImportError:
        return None
    config = MarianConfig(vocab_size=VOCAB, d_model=WIDTH, encoder_layers=DEPTH,
                          decoder_layers=DEPTH, encoder_attention_heads=HEADS,
                          decoder_attention_heads=HEADS, encoder_ffn_dim=FF, decoder_ffn_dim=FF,
                          max_position_embeddings=length + new + 2, pad_token_id=VOCAB - 1,
                          eos_token_id=VOCAB - 2, decoder_start_token_id=VOCAB - 1,
                          scale_embedding=True)  # fmt: skip
    model = MarianMTModel(config).eval()

    def run(src: Tensor) -> float:
        started = time.perf_counter()
        with torch.no_grad():
            model.generate(src, num_beams=4, min_new_tokens=new, max_new_tokens=new,
                           early_stopping=False, length_penalty=0.6, do_sample=False)  # fmt: skip
        return time.perf_counter() - started

    return run


def decode_speed(rounds: int, batch: int, length: int, new: int) -> dict:
    model = attnlab.Seq2Seq(base_config(max(length + 1, new + 1))).eval()
    src = torch.randint(0, VOCAB - 2, (batch, length))

    def ours(beam: int) -> Callable[[Tensor], float]:
        def run(src: Tensor) -> float:
            started = time.perf_counter()
            found = model.search(src, beam=beam, max_length=new, min_length=new)
            assert all(len(t) == new for t in found.tokens)
            return time.perf_counter() - started

        return run

    contenders = {"attnlab greedy": ours(1), "attnlab beam 4": ours(4)}
    hf = hf_generate(batch, length, new)
    if hf is not None:
        contenders["HF Marian generate, 4 beams"] = hf
    for run in contenders.values():
        run(src)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(rounds):
        names = list(contenders)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(contenders[name](src))
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {"batch": batch, "source_length": length, "new_tokens": new, "seconds": median,
              "tokens_per_s": {n: batch * new / s for n, s in median.items()},
              "raw_seconds": times}  # fmt: skip
    result["beam4_over_greedy_time"] = median["attnlab beam 4"] / median["attnlab greedy"]
    if hf is not None:
        hf_times = times["HF Marian generate, 4 beams"]
        paired = [h / a for a, h in zip(times["attnlab beam 4"], hf_times, strict=True)]
        result["hf_over_attnlab_beam4_median"] = statistics.median(paired)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--new", type=int, default=16, help="tokens decoded per sentence")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.manual_seed(0)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "train": train_speed(args.rounds, args.batch, args.length),
        "decode": decode_speed(args.rounds, args.batch, args.length, args.new),
    }
    train, decode = result["train"], result["decode"]
    print(
        f"training step, base shape, batch {args.batch} x {args.length}: attnlab "
        f"{train['seconds']['attnlab']:.3f} s, nn.Transformer "
        f"{train['seconds']['torch.nn.Transformer']:.3f} s; paired ratio "
        f"{train['ratio_median']:.3f} ({train['ratio_min']:.3f}-{train['ratio_max']:.3f})"
    )
    for name, seconds in decode["seconds"].items():
        print(f"decoding {args.new} tokens x {args.batch} sentences, {name}: {seconds:.3f} s, "
              f"{decode['tokens_per_s'][name]:.1f} tokens/s")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
