"""What each command of the command line does; `cli.py` only parses the flags."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load, read_config
from .cli import given, print_json
from .config import (
    CLASSIFY_PRESETS,
    PRESETS,
    ClassifyConfig,
    ConfigError,
    ModelConfig,
    TrainConfig,
)
from .data.tokenizers import DEFAULT_VOCAB, load_tokenizer, train_tokenizer
from .device import pick_device
from .errors import UserError
from .models import Classifier, LanguageModel
from .predict import LABELS_FILE, read_labels
from .runs import prepare_folder, read_settings, write_settings
from .train import Distributed, autocast_for, format_metrics, train


def run(args: argparse.Namespace) -> int:
    if args.command == "train":
        return train_language_model(args) if args.task == "lm" else train_classifier(args)
    from .predict import predict

    handlers = {
        "generate": generate,
        "eval": evaluate,
        "predict": predict,
        "data": data,
        "bench": bench,
    }
    return handlers[args.command](args)


def make(cls: type, settings: dict[str, Any], where: str):
    """A config dataclass from saved or given settings; unknown names are a user error."""
    try:
        return cls(**settings)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from error


@dataclass
class Run:
    """A training run being set up: its settings, folder, device and place among processes."""

    args: argparse.Namespace
    folder: Path
    model: dict[str, Any]
    train: TrainConfig
    extra: dict[str, Any]
    dist: Distributed
    device: torch.device

    def say(self, *text: Any) -> None:
        if self.dist.main:
            print(*text, flush=True)

    @property
    def resuming(self) -> bool:
        return bool(self.args.resume)


def start_run(args: argparse.Namespace, presets: dict, task: str) -> Run:
    """Settings (the run's own when resuming, else the preset's, flags on top), the checked
    run folder, the device and the seed."""
    model_flags, train_flags = given(args, ModelConfig), given(args, TrainConfig)
    extra_flags = given(args, ClassifyConfig) if task == "classify" else {}
    if args.resume:
        if model_flags:
            names = ", ".join("--" + k.replace("_", "-") for k in model_flags)
            raise UserError(
                f"{args.resume}: the model of a run being resumed cannot change ({names})"
            )
        saved = read_settings(args.resume)
        if saved.get("task") != task:
            raise UserError(f"{args.resume}: holds a {saved.get('task')} run, not {task}")
        model, train_settings = saved["model"], {**saved["train"], **train_flags}
        extra, folder = {**saved.get("classify", {}), **extra_flags}, args.resume
    else:
        preset = presets.get(args.preset or "", {})
        model = {**preset.get("model", {}), **model_flags}
        train_settings = {**preset.get("train", {}), **train_flags}
        extra = {**preset.get("classify", {}), **extra_flags}
        # An explicit budget of one kind replaces the preset's budget of the other.
        if "steps" in train_flags and "minutes" not in train_flags:
            train_settings["minutes"] = 0.0
        if "minutes" in train_flags and "steps" not in train_flags:
            train_settings["steps"] = 0
        folder = args.out or Path("runs") / (args.preset or task)
    tcfg = make(TrainConfig, train_settings, str(folder))
    dist_info = Distributed.from_environment()
    if dist_info.main:
        prepare_folder(folder, resume=bool(args.resume), overwrite=args.overwrite)
    device = pick_device(tcfg.device)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(tcfg.seed)
    return Run(args, folder, model, tcfg, extra, dist_info, device)


def fit(run: Run, model: torch.nn.Module, task, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Describe the run, save its settings, train; on rank 0 return the summary and the
    final scores of every held-out split."""
    cfg, tcfg = model.cfg, run.train
    params = sum(p.numel() for p in model.parameters())
    run.say(
        f"model: {cfg.model}, {cfg.depth} blocks, width {cfg.width}, {cfg.heads} heads, "
        f"context {cfg.context}, {cfg.attention} attention, {params / 1e6:.2f}M parameters"
    )
    budget = f"{tcfg.steps} steps" if tcfg.steps else f"{tcfg.minutes:g} minutes"
    run.say(
        f"training on {run.device} for {budget}, batch {tcfg.batch_size}; run folder {run.folder}"
    )
    if run.dist.main:
        write_settings(run.folder, settings)
    summary = train(
        model, task, tcfg, run.folder, run.device, resume=run.resuming, dist_info=run.dist
    )
    if not run.dist.main:
        return None
    if summary["stopped"] == "interrupt":
        run.say(
            f"interrupted at step {summary['step']}; saved. Continue with: "
            f"attnlab train {run.args.task} --resume {run.folder}"
        )
        return summary
    run.say(f"trained {summary['step']} steps in {summary['seconds'] / 60:.1f} minutes")
    scores: dict[str, Any] = {}
    with autocast_for(run.device, tcfg.precision):
        for split in task.held_out:
            scores.update(task.evaluate(model, split, quick=False))
    run.say(format_metrics(summary["step"], scores))
    results = {**summary, **scores}
    (run.folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def train_language_model(args: argparse.Namespace) -> int:
    from .tasks.lm import LanguageModelTask, check_long_enough, prepare_text

    run = start_run(args, PRESETS, "lm")
    tcfg = run.train
    if tcfg.tokenizer not in ("bytes", "bpe"):
        raise ConfigError(f"a language model takes --tokenizer bytes or bpe, not {tcfg.tokenizer}")
    if tcfg.tokenizer == "bpe" and "vocab_size" not in run.model:
        run.model["vocab_size"] = 4096
    started = time.perf_counter()
    tokenizer = load_tokenizer(run.folder) if run.resuming else None
    vocab = run.model.get("vocab_size", ModelConfig.vocab_size)
    text, tokenizer = prepare_text(tcfg, vocab, tokenizer)
    cfg = make(ModelConfig, {**run.model, "vocab_size": tokenizer.vocab_size}, str(run.folder))
    check_long_enough(text, cfg.context, tcfg.data)
    run.say(f"data: {text.source}")
    sizes = ", ".join(f"{s} {text.n_bytes[s]:,} bytes" for s in ("train", "valid", "test"))
    run.say(
        f"  {sizes}; {tokenizer.kind} tokenizer, vocab {tokenizer.vocab_size} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    model = LanguageModel(cfg).to(run.device)
    if run.dist.main and not run.resuming:
        tokenizer.save(run.folder)
    task = LanguageModelTask(text, cfg, tcfg, run.device, run.dist.rank, run.dist.world)
    settings = {"task": "lm", "model": cfg.to_dict(), "train": tcfg.to_dict()}
    results = fit(run, model, task, settings)
    if results is None or results["stopped"] == "interrupt":
        return 130 if results else 0
    run.say("--- sample, continuing the first 64 tokens of the test split ---")
    prompt = torch.as_tensor(text.tokens["test"][:64].astype("int64"), device=run.device)
    out = model.generate(prompt, tcfg.sample_tokens, temperature=0.8, seed=tcfg.seed)
    run.say(tokenizer.decode(out[0, 64:].tolist()))
    run.say("---")
    return 0


def train_classifier(args: argparse.Namespace) -> int:
    from .tasks.classify import ClassificationTask, load_classification_data

    run = start_run(args, CLASSIFY_PRESETS, "classify")
    tcfg, ccfg = run.train, make(ClassifyConfig, run.extra, str(run.folder))
    if tcfg.data == "stdlib" and not run.resuming:
        raise UserError("give --data: a CSV, TSV or JSONL file, listops or imdb")
    started = time.perf_counter()
    data = load_classification_data(tcfg, ccfg)
    if run.resuming:
        tokenizer = load_tokenizer(run.folder)
    else:
        vocab = run.model.get("vocab_size", DEFAULT_VOCAB.get(tcfg.tokenizer))
        tokenizer = train_tokenizer(tcfg.tokenizer, data.train.texts, vocab)
    cfg = make(ModelConfig, {**run.model, "vocab_size": tokenizer.vocab_size}, str(run.folder))
    counts = ", ".join(
        f"{name} {len(part):,}"
        for name, part in (("train", data.train), ("valid", data.valid), ("test", data.test))
        if part
    )
    run.say(f"data: {tcfg.data}: {counts} texts, {len(data.classes)} classes")
    task = ClassificationTask(
        data, tokenizer, cfg.context, tcfg, ccfg, run.device, run.dist.rank, run.dist.world
    )
    run.say(
        f"  {tokenizer.kind} tokenizer, vocab {tokenizer.vocab_size} "
        f"({time.perf_counter() - started:.1f} s). {task.truncation_note()}"
    )
    model = Classifier(cfg, len(data.classes), ccfg.pooling).to(run.device)
    if run.dist.main and not run.resuming:
        tokenizer.save(run.folder)
        (run.folder / LABELS_FILE).write_text(json.dumps(data.classes) + "\n")
    settings = {
        "task": "classify",
        "model": cfg.to_dict(),
        "train": tcfg.to_dict(),
        "classify": ccfg.to_dict(),
    }
    results = fit(run, model, task, settings)
    if results is None:
        return 0
    return 130 if results["stopped"] == "interrupt" else 0


def load_run(folder: Path, device_name: str):
    """A trained model and its tokenizer, from a run folder."""
    device = pick_device(device_name)
    model = load(folder, device)
    return model, load_tokenizer(folder), device


def generate(args: argparse.Namespace) -> int:
    model, tokenizer, device = load_run(args.run, args.device)
    if not isinstance(model, LanguageModel):
        raise UserError(f"{args.run}: holds a {model.kind}, not a language model")
    ids = tokenizer.encode(args.prompt or "\n")
    prompt = torch.as_tensor(ids.astype("int64"), device=device)[None]
    print(args.prompt, end="", flush=True)
    new: list[int] = []
    shown = 0
    for token in model.stream(
        prompt, args.tokens, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, seed=args.seed,
    ):  # fmt: skip
        new.append(int(token[0]))
        text = tokenizer.decode(new)
        # Hold back a character still being completed by the next byte tokens.
        ready = len(text) - 1 if text.endswith("\ufffd") else len(text)
        print(text[shown:ready], end="", flush=True)
        shown = max(shown, ready)
    print(tokenizer.decode(new)[shown:])
    return 0


def evaluate(args: argparse.Namespace) -> int:
    kind = read_config(args.run)["kind"]
    saved = read_settings(args.run)
    settings = {**saved["train"], **({"data": args.data} if args.data else {})}
    tcfg = make(TrainConfig, {**settings, "batch_size": args.batch_size}, str(args.run))
    model, tokenizer, device = load_run(args.run, args.device)
    with autocast_for(device, tcfg.precision):
        if kind == "lm":
            result = evaluate_language_model(args, model, tokenizer, device, tcfg)
        else:
            result = evaluate_classifier(args, model, tokenizer, device, tcfg, saved)
    if args.json:
        print_json(result)
    return 0


def evaluate_language_model(args, model, tokenizer, device, tcfg) -> dict[str, Any]:
    from .data.text import load_text
    from .evaluate import bits_per_byte
    from .tasks.lm import encode_splits

    split = args.split
    splits = load_text(tcfg.data, tcfg.glob, tcfg.valid_fraction, tcfg.test_fraction)
    text = encode_splits(splits, tokenizer, names=(split,))
    if len(text.tokens[split]) < 2:
        raise UserError(f"{tcfg.data}: the {split} split is too short to score")
    options = {"memory": args.memory} if args.memory is not None else {}
    result = bits_per_byte(
        model, text.tokens[split], text.bytes_per_token(split),
        batch_size=args.batch_size, device=device, **options,
    )  # fmt: skip
    print(
        f"{tcfg.data} [{split}]: {result['bits_per_byte']:.4f} bits per byte over "
        f"{result['bytes']:,} bytes"
    )
    return {"data": tcfg.data, "split": split, **result}


def evaluate_classifier(args, model, tokenizer, device, tcfg, saved) -> dict[str, Any]:
    from .metrics import plot_confusion, render_confusion
    from .tasks.classify import ClassificationTask, load_classification_data

    ccfg = make(ClassifyConfig, saved.get("classify", {}), str(args.run))
    if args.data and args.data not in ("listops", "imdb"):
        # A held-out file is scored whole, against the run's own classes.
        ccfg.valid, ccfg.test = args.data, args.data
    data = load_classification_data(tcfg, ccfg)
    classes = read_labels(args.run)
    data.classes = classes
    split = "test" if args.split == "all" else args.split
    if data.split(split) is None:
        raise UserError(f"{tcfg.data}: no {split} split (give --test FILE when training)")
    task = ClassificationTask(data, tokenizer, model.cfg.context, tcfg, ccfg, device)
    report = task.report(model, split)
    confusion = torch.tensor(report["confusion"]).numpy()
    print(
        f"{tcfg.data} [{split}]: accuracy {report['accuracy']:.4f}, macro-F1 "
        f"{report['macro_f1']:.4f} over {confusion.sum():,} texts"
    )
    for name, row in report["per_class"].items():
        print(
            f"  {name:>12}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
            f"F1 {row['f1']:.3f}  support {row['support']}"
        )
    print(render_confusion(confusion, classes))
    path = plot_confusion(confusion, classes, args.run / f"confusion-{split}.png")
    print(f"confusion matrix: {path}")
    return {"data": tcfg.data, "split": split, **report}


def data(args: argparse.Namespace) -> int:
    from .data.listops import LRA_MAX_LENGTH, write_listops

    paths = write_listops(
        args.out, args.size or None, args.max_length or LRA_MAX_LENGTH, seed=args.seed
    )
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def bench(args: argparse.Namespace) -> int:
    from .bench import KINDS, format_table, run_attention_bench

    rows = run_attention_bench(
        args.lengths, args.kinds or list(KINDS), device=args.device, plot=args.plot,
        log=lambda line: print(line, flush=True),
    )  # fmt: skip
    print(format_table(rows))
    if args.json:
        print_json({"rows": rows})
    return 0
