"""What each command of the command line does; `cli.py` only parses the flags."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load, read_config
from .cli import given, print_json
from .config import PRESETS, ConfigError, ModelConfig, TrainConfig
from .data.tokenizers import load_tokenizer
from .device import pick_device
from .errors import UserError
from .models import LanguageModel
from .runs import prepare_folder, read_settings, write_settings
from .tasks.lm import LanguageModelTask, check_long_enough, encode_splits, prepare_text
from .train import Distributed, autocast_for, format_metrics, train


def run(args: argparse.Namespace) -> int:
    if args.command == "train":
        return train_language_model(args)
    if args.command == "generate":
        return generate(args)
    if args.command == "eval":
        return evaluate(args)
    raise UserError(f"unknown command {args.command!r}")


def settings_for(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """Model and training settings: the run's own when resuming, else the preset's, with the
    flags given on the command line on top."""
    model_flags, train_flags = given(args, ModelConfig), given(args, TrainConfig)
    if args.resume:
        if model_flags:
            raise UserError(
                f"{args.resume}: the model of a run being resumed cannot change "
                f"(drop {', '.join('--' + k.replace('_', '-') for k in model_flags)})"
            )
        saved = read_settings(args.resume)
        return saved["model"], {**saved["train"], **train_flags}, args.resume
    preset = PRESETS.get(args.preset or "", {"model": {}, "train": {}})
    model = {**preset["model"], **model_flags}
    if train_flags.get("tokenizer") == "bpe" and "vocab_size" not in model:
        model["vocab_size"] = 4096
    train = {**preset["train"], **train_flags}
    if "steps" in train_flags and "minutes" not in train_flags:
        train["minutes"] = 0.0  # an explicit step budget replaces the preset's time budget
    if "minutes" in train_flags and "steps" not in train_flags:
        train["steps"] = 0
    out = args.out or Path("runs") / (args.preset or "lm")
    return model, train, out


def train_language_model(args: argparse.Namespace) -> int:
    model_settings, train_settings, folder = settings_for(args)
    tcfg = make(TrainConfig, train_settings, str(folder / "train.json"))
    dist_info = Distributed.from_environment()
    say = print if dist_info.main else (lambda *a, **k: None)
    if dist_info.main:
        prepare_folder(folder, resume=bool(args.resume), overwrite=args.overwrite)
    device = pick_device(tcfg.device)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(tcfg.seed)

    tokenizer = load_tokenizer(folder) if args.resume else None
    vocab = model_settings.get("vocab_size", ModelConfig.vocab_size)
    started = time.perf_counter()
    text, tokenizer = prepare_text(tcfg, vocab, tokenizer)
    model_settings["vocab_size"] = tokenizer.vocab_size
    cfg = make(ModelConfig, model_settings, str(folder / "train.json"))
    check_long_enough(text, cfg.context, tcfg.data)
    say(f"data: {text.source}")
    say(
        "  "
        + ", ".join(f"{s} {text.n_bytes[s]:,} bytes" for s in ("train", "valid", "test"))
        + f"; {tokenizer.kind} tokenizer, vocab {tokenizer.vocab_size} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    model = LanguageModel(cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    say(
        f"model: {cfg.model}, {cfg.depth} blocks, width {cfg.width}, {cfg.heads} heads, "
        f"context {cfg.context}, {cfg.attention} attention, {params / 1e6:.2f}M parameters"
    )
    budget = f"{tcfg.steps} steps" if tcfg.steps else f"{tcfg.minutes:g} minutes"
    say(f"training on {device} for {budget}, batch {tcfg.batch_size}; run folder {folder}")
    if dist_info.main and not args.resume:
        write_settings(folder, {"task": "lm", "model": cfg.to_dict(), "train": tcfg.to_dict()})
        tokenizer.save(folder)
    elif dist_info.main:
        write_settings(folder, {"task": "lm", "model": cfg.to_dict(), "train": tcfg.to_dict()})
    task = LanguageModelTask(text, cfg, tcfg, device, dist_info.rank, dist_info.world)
    summary = train(
        model, task, tcfg, folder, device, resume=bool(args.resume), dist_info=dist_info
    )
    if not dist_info.main:
        return 0
    if summary["stopped"] == "interrupt":
        say(
            f"interrupted at step {summary['step']}; saved. Continue with: "
            f"attnlab train lm --resume {folder}"
        )
        return 130
    say(f"trained {summary['step']} steps in {summary['seconds'] / 60:.1f} minutes")
    results = {}
    with autocast_for(device, tcfg.precision):
        for split in ("valid", "test"):
            results.update(task.evaluate(model, split, quick=False))
    say(format_metrics(summary["step"], results))
    say(f"--- sample (after the first {64} tokens of the test split) ---")
    prompt = torch.as_tensor(text.tokens["test"][:64].astype("int64"), device=device)
    out = model.generate(prompt, tcfg.sample_tokens, temperature=0.8, top_k=None, seed=tcfg.seed)
    say(tokenizer.decode(out[0, 64:].tolist()))
    say("---")
    (folder / "results.json").write_text(json.dumps({**summary, **results}, indent=2) + "\n")
    return 0


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
        prompt,
        args.tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    ):
        new.append(int(token[0]))
        text = tokenizer.decode(new)
        # Hold back a character still being completed by the next byte tokens.
        ready = len(text) - 1 if text.endswith("\ufffd") else len(text)
        print(text[shown:ready], end="", flush=True)
        shown = max(shown, ready)
    print(tokenizer.decode(new)[shown:])
    return 0


def evaluate(args: argparse.Namespace) -> int:
    config = read_config(args.run)
    if config["kind"] != "lm":
        raise UserError(f"{args.run}: evaluating a {config['kind']} is not supported yet")
    model, tokenizer, device = load_run(args.run, args.device)
    settings = read_settings(args.run)["train"]
    if args.data:
        settings["data"] = args.data
    tcfg = make(TrainConfig, {**settings, "batch_size": args.batch_size}, str(args.run))
    from .data.text import load_text

    splits = load_text(tcfg.data, tcfg.glob, tcfg.valid_fraction, tcfg.test_fraction)
    text = encode_splits(splits, tokenizer, names=(args.split,))
    if len(text.tokens[args.split]) < 2:
        raise UserError(f"{tcfg.data}: the {args.split} split is too short to score")
    from .evaluate import bits_per_byte

    options = {"memory": args.memory} if args.memory is not None else {}
    with autocast_for(device, tcfg.precision):
        result = bits_per_byte(
            model,
            text.tokens[args.split],
            text.bytes_per_token(args.split),
            batch_size=args.batch_size,
            device=device,
            **options,
        )
    result = {"data": tcfg.data, "split": args.split, **result}
    print(
        f"{tcfg.data} [{args.split}]: {result['bits_per_byte']:.4f} bits per byte over "
        f"{result['bytes']:,} bytes"
    )
    if args.json:
        print_json(result)
    return 0


def make(cls: type, settings: dict[str, Any], where: str):
    """A config dataclass from saved or given settings; unknown names are a user error."""
    try:
        return cls(**settings)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from error
