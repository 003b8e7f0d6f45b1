"""Training and generation throughput of attnlab's language model next to peers of the same
shape: HuggingFace `transformers`' GPT-2, `x-transformers`' decoder and nanoGPT's GPT (as
`benchmarks/vs_nanogpt.py` writes it out; training only).

Shape (the foundation issue): vocab 256, context 256, 6 blocks, width 256, 8 heads.
Training: tokens/s of one forward + backward + AdamW step on a (16, 256) batch.
Generation: tokens/s of 256 new tokens from a 1-token prompt, batch 1, greedy.

The CPU is shared, so every measurement is interleaved: each round visits every contender
once, in a rotated order, and the table reports the median over rounds with the spread
(min-max). Ratios are of medians.

    python benchmarks/throughput.py [--quick] [--json PATH] [--threads 2]

The peers are optional dependencies: `pip install -e .[bench]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnlab
from attnlab.tasks.lm import RECIPE_MODEL
from benchmarks.vs_nanogpt import BabyGPT

VOCAB, CONTEXT, DEPTH, WIDTH, HEADS = 256, 256, 6, 256, 8
# The same AdamW for every contender (attnlab's training defaults): decay on matrices only.
LR, BETAS, WEIGHT_DECAY = 1e-3, (0.9, 0.99), 0.1


@dataclass
class Contender:
    """One model under test: how to take a training step and how to generate."""

    name: str
    model: nn.Module
    loss: Callable[[Tensor, Tensor], Tensor]
    note: str = ""
    autocast: bool = False
    rounds: int | None = None  # measure in the first `rounds` rounds only (None: all)
    optimizer: torch.optim.Optimizer | None = None

    def step(self, tokens: Tensor, targets: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.loss(tokens, targets)
        loss.backward()
        self.optimizer.step()


@dataclass
class Samples:
    """Tokens/s of each round, for one contender."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def row(self) -> dict:
        return {
            "tokens_per_s": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "rounds": self.values,
        }


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=LR, betas=BETAS)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def ours(**overrides) -> attnlab.LanguageModel:
    cfg = attnlab.ModelConfig(
        vocab_size=VOCAB, context=CONTEXT, depth=DEPTH, width=WIDTH, heads=HEADS, **overrides
    )
    return attnlab.LanguageModel(cfg)


def ours_loss(lm: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """attnlab's own training objective (the one `attnlab train` calls)."""
    return lambda tokens, targets: lm.loss(tokens, targets)[0]


def hf_gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=CONTEXT,
        n_embd=WIDTH,
        n_layer=DEPTH,
        n_head=HEADS,
        # attnlab trains without dropout by default; GPT-2's defaults are 0.1.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
        # The fused kernel is its fastest path on a CPU (flash-attn packages are GPU-only).
        attn_implementation="sdpa",
    )
    return GPT2LMHeadModel(config)


def x_decoder() -> nn.Module:
    from x_transformers import Decoder, TransformerWrapper

    return TransformerWrapper(
        num_tokens=VOCAB,
        max_seq_len=CONTEXT,
        # attn_flash: scaled_dot_product_attention instead of the explicit softmax.
        # attn_dim_head: its default of 64 would give 8 heads twice attnlab's inner width.
        attn_layers=Decoder(
            dim=WIDTH, depth=DEPTH, heads=HEADS, attn_dim_head=WIDTH // HEADS, attn_flash=True
        ),
        tie_embedding=True,
    )


def contenders(compile_model: bool, bf16: bool) -> tuple[list[Contender], dict]:
    """The training contenders, and notes on what happened while building them."""
    notes: dict = {}
    lm = ours()
    out = [Contender("attnlab", lm, ours_loss(lm), "defaults: ReLU, fused kernel, fused q/k/v")]
    recipe = ours(**RECIPE_MODEL)
    out.append(Contender("attnlab recipe", recipe, ours_loss(recipe), "the CPU presets' model"))
    gelu = ours(activation="gelu")
    out.append(Contender("attnlab gelu", gelu, ours_loss(gelu), "GELU like both peers"))
    ref = ours(options={"dense": {"path": "reference"}})
    out.append(Contender("attnlab reference attn", ref, ours_loss(ref), "explicit softmax path"))
    if bf16:
        lm16 = ours()
        # Without bf16 matrix units a bf16 step is several times slower than fp32: two
        # rounds bound its share of the run.
        out.append(
            Contender("attnlab bf16 autocast", lm16, ours_loss(lm16), autocast=True, rounds=2)
        )
    if compile_model:
        lmc = ours()
        compiled = torch.compile(lmc)
        out.append(
            Contender(
                "attnlab torch.compile",
                lmc,
                lambda x, y: cross_entropy(compiled(x), y),
                "compiled forward, same loss",
            )
        )
    hf = hf_gpt2()
    notes["hf_attn_implementation"] = hf.config._attn_implementation
    out.append(
        Contender("HF GPT-2", hf, lambda x, y: cross_entropy(hf(input_ids=x).logits, y), "sdpa")
    )
    xt = x_decoder()
    out.append(Contender("x-transformers", xt, lambda x, y: cross_entropy(xt(x), y), "flash"))
    nano = BabyGPT(DEPTH, HEADS, WIDTH, CONTEXT, VOCAB)
    out.append(Contender("nanoGPT", nano, lambda x, y: cross_entropy(nano(x), y), "its GPT"))
    for c in out:
        c.model.train()
        c.optimizer = adamw(c.model)
    return out, notes


def rotate(items: list, r: int) -> list:
    r %= len(items)
    return items[r:] + items[:r]


def measure_training(cs: list[Contender], batch: int, rounds: int, steps: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (batch, CONTEXT + 1), generator=generator)
    x, y = tokens[:, :-1], tokens[:, 1:]
    results: dict[str, Samples] = {c.name: Samples() for c in cs}
    warmup: dict[str, float] = {}
    for c in cs:  # warm-up: allocator, optimizer state; compilation takes two calls to settle
        start = time.perf_counter()
        for _ in range(2 if c.name.endswith("compile") else 1):
            c.step(x, y)
        warmup[c.name] = time.perf_counter() - start
        print(f"  warm-up {c.name}: {warmup[c.name]:.1f} s", file=sys.stderr)
    for r in range(rounds):
        for c in rotate(cs, r):
            if c.rounds is not None and r >= c.rounds:
                continue
            start = time.perf_counter()
            for _ in range(steps):
                c.step(x, y)
            results[c.name].values.append(steps * batch * CONTEXT / (time.perf_counter() - start))
        measured = [c for c in cs if len(results[c.name].values) > r]
        line = ", ".join(f"{c.name} {results[c.name].values[r]:.0f}" for c in measured)
        print(f"  train round {r + 1}/{rounds}: {line}", file=sys.stderr)
    return {"samples": results, "warmup_s": warmup}


def generators(new_tokens: int) -> list[tuple[str, Callable[[], Tensor]]]:
    """Greedy decoding of `new_tokens` tokens from a 1-token prompt; each returns the text."""
    prompt = torch.zeros(1, 1, dtype=torch.long)
    lm, hf, xt = ours().eval(), hf_gpt2().eval(), x_decoder().eval()
    from x_transformers import AutoregressiveWrapper

    wrapped = AutoregressiveWrapper(xt).eval()

    def hf_generate() -> Tensor:
        return hf.generate(
            prompt,
            do_sample=False,
            min_new_tokens=new_tokens,
            max_new_tokens=new_tokens,
            use_cache=True,
        )

    def xt_generate(cache: bool) -> Callable[[], Tensor]:
        return lambda: wrapped.generate(prompt, new_tokens, temperature=0.0, cache_kv=cache)

    return [
        ("attnlab cached", lambda: lm.generate(prompt, new_tokens, temperature=0.0)),
        (
            "attnlab uncached",
            lambda: lm.generate(prompt, new_tokens, temperature=0.0, use_cache=False),
        ),
        ("HF GPT-2 cached", hf_generate),
        ("x-transformers cached", xt_generate(True)),
        ("x-transformers uncached", xt_generate(False)),
    ]


def measure_generation(new_tokens: int, rounds: int) -> dict[str, Samples]:
    gens = generators(new_tokens)
    results: dict[str, Samples] = {name: Samples() for name, _ in gens}
    with torch.inference_mode():
        for _, run in gens:
            run()  # warm-up
        for r in range(rounds):
            for name, run in rotate(gens, r):
                start = time.perf_counter()
                out = run()
                seconds = time.perf_counter() - start
                new = out.shape[-1] - (1 if out.shape[-1] > new_tokens else 0)
                if new != new_tokens:
                    raise RuntimeError(f"{name} made {new} tokens, not {new_tokens}")
                results[name].values.append(new_tokens / seconds)
            line = ", ".join(f"{k} {v.values[-1]:.0f}" for k, v in results.items())
            print(f"  generate round {r + 1}/{rounds}: {line}", file=sys.stderr)
    return results


def paired(a: Samples, b: Samples) -> float:
    """Median over rounds of a/b, each ratio from two samples taken close together in time.
    Less sensitive to the load changing between rounds than a ratio of medians."""
    return statistics.median(x / y for x, y in zip(a.values, b.values, strict=False))


def table(title: str, rows: dict[str, Samples], reference: str) -> str:
    lines = [
        title,
        f"  {'':26} {'median tok/s':>12} {'best':>7} {'min-max':>11}  "
        f"{'/ ' + reference + ' (medians, paired)':>36}",
    ]
    ref = rows[reference]
    for name, s in rows.items():
        spread = f"{min(s.values):.0f}-{max(s.values):.0f}"
        ratio = f"{s.median / ref.median:.2f}x, {paired(s, ref):.2f}x"
        lines.append(f"  {name:26} {s.median:12.0f} {max(s.values):7.0f} {spread:>11}  {ratio:>36}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small batch, few rounds")
    parser.add_argument("--json", help="write the numbers to this file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 6, quick 2)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-bf16", action="store_true", help="skip bf16 autocast")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = 4 if args.quick else 16
    new_tokens = 64 if args.quick else 256
    rounds = args.rounds or (2 if args.quick else 6)
    # Short rounds, many of them: a load spike then spoils one sample, not a whole column.
    steps = 1

    cs, notes = contenders(not args.no_compile, not args.no_bf16)
    params = {c.name: count_parameters(c.model) for c in cs}
    compile_error = None
    try:
        train = measure_training(cs, batch, rounds, steps)
    except Exception as error:  # compilation failing on this machine is a result, not a crash
        if args.no_compile:
            raise
        compile_error = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        print(f"  torch.compile failed ({compile_error}); measuring without it", file=sys.stderr)
        cs = [c for c in cs if c.name != "attnlab torch.compile"]
        train = measure_training(cs, batch, rounds, steps)
    gen = measure_generation(new_tokens, rounds)

    samples = train["samples"]
    peer = max(("HF GPT-2", "x-transformers", "nanoGPT"), key=lambda n: samples[n].median)
    ours_gen = gen["attnlab cached"].median
    result = {
        "machine": {
            "torch": torch.__version__,
            "threads": args.threads,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "processor": platform.processor() or platform.machine(),
        },
        "shape": dict(vocab=VOCAB, context=CONTEXT, depth=DEPTH, width=WIDTH, heads=HEADS),
        "batch": batch,
        "new_tokens": new_tokens,
        "rounds": rounds,
        "parameters": params,
        "notes": {**notes, "compile_error": compile_error, **{c.name: c.note for c in cs}},
        "train": {n: s.row() for n, s in samples.items()},
        "train_warmup_s": train["warmup_s"],
        "generate": {n: s.row() for n, s in gen.items()},
        "ratios": {
            "faster_peer": peer,
            "train_vs_faster_peer": samples["attnlab"].median / samples[peer].median,
            "train_vs_faster_peer_paired": paired(samples["attnlab"], samples[peer]),
            **{
                f"train_{name.replace(' ', '_')}_vs_faster_peer_paired": paired(s, samples[peer])
                for name, s in samples.items()
                if name.startswith("attnlab ")
            },
            "train_vs_nanogpt_paired": paired(samples["attnlab"], samples["nanoGPT"]),
            "train_recipe_vs_nanogpt_paired": paired(samples["attnlab recipe"], samples["nanoGPT"]),
            "cached_vs_uncached": ours_gen / gen["attnlab uncached"].median,
            "cached_vs_uncached_paired": paired(gen["attnlab cached"], gen["attnlab uncached"]),
            "cached_vs_hf_cached_paired": paired(gen["attnlab cached"], gen["HF GPT-2 cached"]),
            "cached_vs_x_transformers_cached_paired": paired(
                gen["attnlab cached"], gen["x-transformers cached"]
            ),
        },
    }
    print(f"torch {torch.__version__}, {args.threads} threads, batch {batch}, rounds {rounds}")
    print("parameters: " + ", ".join(f"{n} {p:,}" for n, p in params.items()))
    print(table(f"training, forward + backward + AdamW, ({batch}, {CONTEXT}) batch", samples, peer))
    print(table(f"generation, {new_tokens} new tokens, batch 1, greedy", gen, "attnlab cached"))
    r = result["ratios"]
    print(
        f"attnlab training / {peer}: {r['train_vs_faster_peer']:.2f}x of medians, "
        f"{r['train_vs_faster_peer_paired']:.2f}x paired (goal >= 1.1)"
    )
    print(
        f"attnlab cached / uncached generation: {r['cached_vs_uncached']:.1f}x of medians, "
        f"{r['cached_vs_uncached_paired']:.1f}x paired (goal >= 5)"
    )
    print(
        f"attnlab training / nanoGPT: {r['train_vs_nanogpt_paired']:.2f}x paired, the recipe's "
        f"model {r['train_recipe_vs_nanogpt_paired']:.2f}x (goal >= 1.0, aiming at 1.1)"
    )
    print(f"attnlab cached / HF GPT-2 cached: {r['cached_vs_hf_cached_paired']:.1f}x (goal >= 2)")
    if compile_error:
        print(f"torch.compile failed: {compile_error}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
