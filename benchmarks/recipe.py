"""The training recipe of a language-model preset, lever by lever: the preset as it is, then
with each lever turned off alone, for one or more seeds, each through `attnlab train lm` on
the default corpus; plus the preset with every lever off (the recipe before them), and with
--candidates, the preset with each lever not in it turned on; with --grid, the preset at other
learning rates (Muon's and AdamW's scaled together) and batch sizes. Writes the
ablation as JSON and a plot of bits per byte against training seconds, with the standard
compressors on the same test bytes as horizontal lines. Runs already finished in --out are
read rather than trained again, so an interrupted ablation resumes and --only can split one
across processes.

    .venv/bin/python -m benchmarks.recipe --preset tiny --seeds 0 1 \\
        --json benchmarks/results/recipe_tiny.json --plot benchmarks/results/recipe_tiny.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attnlab.evaluate import compressor_bits_per_byte
from attnlab.tasks.lm import PRESETS, TextData, read_splits
from attnlab.training.optimizers.muon import Muon
from benchmarks.common import attnlab, results_of, table

# Each lever of the recipe, and the flags that turn it off (back to the settings before it).
LEVERS: dict[str, list[str]] = {
    "BPE 2048 (off: bytes)": ["--tokenizer", "bytes"],
    "Muon (off: AdamW)": ["--optimizer", "adamw"],
    "linear decay to 0 (off: cosine to lr/10)": ["--schedule", "cosine", "--min-lr", "LR/10"],
    "QK-norm": ["--no-qk-norm"],
    "zero-initialised outputs": ["--no-zero-init"],
    "rotary positions (off: learned)": ["--position", "learned"],
    "no biases (off: biases)": ["--bias"],
    "value residual": ["--no-value-residual"],
    "Primer convolution (off: none)": ["--qkv-conv", "0"],
    "AdamW rate 2.4e-2 (off: 4e-3)": ["--lr", "4e-3"],
}

# Levers tried and not in the presets, and the flags that turn each on. The first three were in
# the recipe until the ablation at the small budget; the value residual was one of these.
CANDIDATES: dict[str, list[str]] = {
    "logit soft-cap 30": ["--logit-cap", "30"],
    "ReLU²": ["--activation", "relu2"],
    "untied output layer": ["--no-tie-weights"],
    "sequence-length warm-up (first 25 %)": ["--context-warmup", "0.25"],
    "batch-size ramp (first 25 %)": ["--batch-warmup", "0.25"],
}


def flags_off(levers: list[str], lr: float) -> list[str]:
    """The flags turning `levers` off; LR/10 is a tenth of the rate the run ends up with (the
    preset's `lr`, or the one a lever turned off sets)."""
    flags = [flag for name in levers for flag in LEVERS[name]]
    if "--lr" in flags:
        lr = float(flags[flags.index("--lr") + 1])
    return [f"{lr / 10:g}" if flag == "LR/10" else flag for flag in flags]


def grid(preset: str, lr_scales: list[float], batches: list[int]) -> dict[str, list[str]]:
    """Rows of the preset at each learning-rate scale (both optimisers' rates times it) and
    batch size; the preset's own setting is its "preset" row, so it is left out here."""
    train = PRESETS[preset]["train"]
    rows = {}
    for scale in lr_scales:
        for batch in batches:
            if scale == 1 and batch == train["batch_size"]:
                continue
            rows[f"lr ×{scale:g}, batch {batch}"] = [
                "--lr", f"{train['lr'] * scale:g}", "--muon.lr", f"{Muon.Options().lr * scale:g}",
                "--batch-size", str(batch),
            ]  # fmt: skip
    return rows


def run_name(label: str, seed: int) -> str:
    """The run folder of one configuration and seed, inside an ablation's --out."""
    return f"{label.replace(' ', '_').replace('/', '')}-{seed}"


def curve(run: Path) -> list[tuple[float, float]]:
    """(training seconds, quick validation bits per byte) of each check of a run."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["seconds"], r["valid_bpb"]) for r in rows if "seconds" in r and "valid_bpb" in r]


def by_config(rows: list[dict]) -> list[dict]:
    """One row per configuration: test bits per byte of each seed, their mean, the change from
    the preset's mean (what turning the lever off costs), and the steps each seed made."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    seeds = {c: [r for r in rows if r["config"] == c] for c in configs}
    mean = {c: sum(r["test bpb"] for r in seeds[c]) / len(seeds[c]) for c in configs}
    base = mean.get("preset")
    return [{"config": c, "test bpb by seed": " / ".join(f"{r['test bpb']:.4f}" for r in seeds[c]),
             "mean": round(mean[c], 4),
             "vs preset": "" if base is None or c == "preset" else f"{mean[c] - base:+.4f}",
             "steps": " / ".join(str(r["steps"]) for r in seeds[c])} for c in configs]  # fmt: skip


def plot(runs: dict[str, Path], compressors: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, run in runs.items():
        seconds, bpb = zip(*curve(run), strict=True)
        line = ax.plot(seconds, bpb, marker=".", label=label)[0]
        final = results_of(run)
        ax.scatter([final["seconds"]], [final["test_bpb"]], color=line.get_color(), marker="o",
                   s=50, zorder=3)  # fmt: skip
    for i, (name, bpb) in enumerate(sorted(compressors.items(), key=lambda kv: -kv[1])):
        ax.axhline(bpb, color="grey", linestyle=("--", ":", "-.")[i % 3], linewidth=1)
        ax.text(
            0.01 + 0.2 * i,
            bpb,
            f"{name} {bpb:.2f}",
            va="bottom",
            fontsize=8,
            color="grey",
            transform=ax.get_yaxis_transform(),
        )  # labels side by side: xz and bzip2 are close
    ax.set_xlabel("training seconds")
    ax.set_ylabel("bits per byte (lines: validation checks; dots: whole test split)")
    ax.set_ylim(top=min(4.0, ax.get_ylim()[1]))
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--levers", nargs="*", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--candidates", nargs="*", default=[], choices=list(CANDIDATES),
                        help="also a row with each of these levers turned on")  # fmt: skip
    parser.add_argument("--candidates-together", nargs="*", default=[], choices=list(CANDIDATES),
                        help="also a row with all of these levers turned on")  # fmt: skip
    parser.add_argument("--together", nargs="*", default=[], choices=list(LEVERS),
                        help="also a row with just these levers off, together")  # fmt: skip
    parser.add_argument("--grid", nargs=2, metavar=("LR_SCALES", "BATCHES"),
                        help="also the preset at these rate scales and batch sizes, e.g. "
                        "--grid 0.5,1,2 8,16,32")  # fmt: skip
    parser.add_argument("--budget", nargs="*", default=[], help="e.g. --minutes 3 or --steps 500")
    parser.add_argument("--only", nargs="+", help="just these rows: preset, 'every lever off', "
                        "'- LEVER', '+ CANDIDATE' or 'lr ×S, batch B'")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/bench-recipe"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot-with", nargs="*", default=[], metavar="NAME=DIR",
                        help="another ablation's --out: its seed-0 runs join the plot")  # fmt: skip
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    lr = PRESETS[args.preset]["train"]["lr"]
    configs = {"preset": [], **{f"- {n}": flags_off([n], lr) for n in args.levers},
               "every lever off": flags_off(list(LEVERS), lr)}  # fmt: skip
    configs |= {f"+ {name}": CANDIDATES[name] for name in args.candidates}
    if args.candidates_together:
        configs["+ " + " + ".join(args.candidates_together)] = [
            flag for name in args.candidates_together for flag in CANDIDATES[name]
        ]
    if args.together:
        configs["- " + " + ".join(args.together)] = flags_off(args.together, lr)
    if args.grid:
        scales, batches = (text.split(",") for text in args.grid)
        configs |= grid(args.preset, [float(x) for x in scales], [int(x) for x in batches])
    rows, first_seed = [], {}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only:
        configs = {label: flags for label, flags in configs.items() if label in args.only}
    for seed in args.seeds:
        for label, flags in configs.items():
            run = args.out / run_name(label, seed)
            if not (run / "results.json").exists():  # a finished run is read, not trained again
                attnlab("train", "lm", "--preset", args.preset, *args.budget, "--seed", seed,
                        "--sample-tokens", 0, "--out", run, "--overwrite", *flags,
                        log=args.out / f"{run.name}.log")  # fmt: skip
            result = results_of(run)
            rows.append({"config": label, "seed": seed, "steps": result["step"],
                         "seconds": round(result["seconds"], 1),
                         "valid bpb": round(result["valid_bpb"], 4),
                         "test bpb": round(result["test_bpb"], 4)})  # fmt: skip
            print(rows[-1], flush=True)
            first_seed.setdefault(label, run)
    print(table(rows, ["config", "seed", "steps", "seconds", "valid bpb", "test bpb"]))
    print(table(by_config(rows), ["config", "test bpb by seed", "mean", "vs preset", "steps"]))
    compressors = compressor_bits_per_byte(read_splits(TextData()).test)
    if args.json:
        summary = {"preset": args.preset, "budget": args.budget, "compressors": compressors,
                   "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(summary, indent=2))
    if args.plot:
        shown = {f"{args.preset}: {k}": first_seed[k] for k in ("preset", "every lever off")
                 if k in first_seed}  # fmt: skip
        for name, folder in (pair.split("=", 1) for pair in args.plot_with):
            for label in ("preset", "every lever off"):
                run = Path(folder) / run_name(label, 0)
                if (run / "results.json").exists():
                    shown[f"{name}: {label}"] = run
        plot(shown, compressors, args.plot, "bits per byte against training time")


if __name__ == "__main__":
    main()
