"""Training (or generation) speed of two attnlab checkouts side by side: is a change as fast
as before?

Each checkout runs in a process of its own (its `src` on PYTHONPATH), both kept alive; rounds
alternate between them (A B, then B A, ...), one at a time, so load on a shared machine hits
both alike. Each side builds the same language model through the public API only
(`attnlab.ModelConfig`, `LanguageModel`, `.loss`, `.generate`) and trains it with AdamW, or
with --generate decodes 256 tokens greedily from a 1-token prompt (batch 1, key/value cache);
the result is the median over rounds of the per-round ratio of tokens/s (paired), as in
`throughput.py`.

    python benchmarks/ab_train.py --a src --b ../before/src [--rounds 12] [--steps 3] \
        [--model default|recipe] [--generate]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch, attnlab
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
recipe = {}
if sys.argv[2] == "recipe":  # the CPU presets' model details (rotary positions, QK-norm, ...)
    from attnlab.tasks.lm import RECIPE_MODEL as recipe
cfg = attnlab.ModelConfig(vocab_size=256, context=256, depth=6, width=256, heads=8, **recipe)
lm = attnlab.LanguageModel(cfg).train()
opt = torch.optim.AdamW(lm.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
tokens = torch.randint(0, 256, (16, 257), generator=torch.Generator().manual_seed(0))
x, y = tokens[:, :-1], tokens[:, 1:]
def step():
    opt.zero_grad(set_to_none=True)
    lm.loss(x, y)[0].backward()
    opt.step()
per_step = x.numel()  # tokens a step handles
if sys.argv[3] == "generate":
    lm.eval()
    per_step = 256
    def step():
        lm.generate(tokens[:1, :1], per_step, temperature=0.0)
step()
print("ready", flush=True)
for line in sys.stdin:
    steps = int(line)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(steps * per_step / (time.perf_counter() - start), flush=True)
"""


def start(src: str, threads: int, model: str, work: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(threads), model, work],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    if child.stdout.readline().strip() != "ready":
        raise SystemExit(f"{src}: the benchmark process did not start")
    return child


def measure(child: subprocess.Popen, steps: int) -> float:
    child.stdin.write(f"{steps}\n")
    child.stdin.flush()
    return float(child.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="src folder of the first checkout")
    parser.add_argument("--b", required=True, help="src folder of the second checkout")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=3, help="steps (generations) per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", choices=("default", "recipe"), default="default",
                        help="the library's default model, or the CPU presets' recipe")  # fmt: skip
    parser.add_argument("--generate", action="store_true", help="time generation, not training")
    args = parser.parse_args()
    work = "generate" if args.generate else "train"
    a, b = (start(src, args.threads, args.model, work) for src in (args.a, args.b))
    rates: dict[str, list[float]] = {"a": [], "b": []}
    for r in range(args.rounds):
        order = (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a))
        for name, child in order:
            rates[name].append(measure(child, args.steps))
        print(f"round {r + 1}: a {rates['a'][-1]:,.0f}  b {rates['b'][-1]:,.0f} tokens/s",
              file=sys.stderr, flush=True)  # fmt: skip
    for child in (a, b):
        child.stdin.close()
        child.wait()
    result = {
        "a": args.a,
        "b": args.b,
        "a_median_tokens_per_s": statistics.median(rates["a"]),
        "b_median_tokens_per_s": statistics.median(rates["b"]),
        "a_over_b_paired": statistics.median(x / y for x, y in zip(*rates.values(), strict=True)),
        "rounds": rates,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
