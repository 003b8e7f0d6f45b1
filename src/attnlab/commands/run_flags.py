"""The flags of the `attnlab train` runs that `compare` and `search` start: settings given
as SETTING=VALUE (`lr=0.002`, `nystrom.landmarks=32`, `tie-weights=false`) become the flags of
`attnlab train TASK`, checked by that command's own parser."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..errors import UserError

# Settings the commands give each run themselves.
OWN = ("seed", "out", "resume", "overwrite")


def parse_assignment(text: str, flag: str) -> tuple[str, list[str]]:
    setting, equals, values = text.partition("=")
    setting = setting.strip().lstrip("-")
    listed = [v.strip() for v in values.split(",")] if equals else []
    if not setting or not listed or "" in listed:
        raise UserError(f"{flag} {text!r}: expected SETTING=VALUE[,VALUE...]")
    if setting.replace("_", "-") in OWN:
        raise UserError(f"{flag} {text!r}: compare sets --{setting} of each run itself "
                        "(seeds with --seeds)")  # fmt: skip
    return setting, listed


def variant_settings(text: str) -> list[tuple[str, str]]:
    """'model=xl xl.memory=128' -> [("model", "xl"), ("xl.memory", "128")]."""
    pairs = []
    for part in text.split():
        setting, values = parse_assignment(part, "--variants")
        if len(values) != 1:
            raise UserError(f"--variants {text!r}: one value per setting in a variant")
        pairs.append((setting, values[0]))
    if not pairs:
        raise UserError("--variants: an empty variant")
    return pairs


def as_flags(setting: str, value: str, parser: argparse.ArgumentParser, where: str) -> list[str]:
    """`--setting value` as `attnlab train` takes it; booleans as `--x` or `--no-x`."""
    flag = "--" + setting.replace("_", "-") if "." not in setting else "--" + setting
    action = parser._option_string_actions.get(flag)
    if action is None:
        raise UserError(f"{where}: {parser.prog} has no setting {setting!r}")
    if isinstance(action, argparse.BooleanOptionalAction):
        truth = {"true": flag, "yes": flag, "1": flag, "false": f"--no-{flag[2:]}",
                 "no": f"--no-{flag[2:]}", "0": f"--no-{flag[2:]}"}  # fmt: skip
        if value.lower() not in truth:
            raise UserError(f"{where}: {setting} is true or false, not {value!r}")
        return [truth[value.lower()]]
    return [flag, value]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "run"


def base_flags(cfg: Any, parser: argparse.ArgumentParser) -> list[str]:
    """The flags every run shares: `cfg.data`, `.preset`, `.config`, each `.set`
    SETTING=VALUE, and the budget (`.steps`, `.minutes`)."""
    shared: list[str] = []
    for flag, value in (("--data", cfg.data), ("--preset", cfg.preset), ("--config", cfg.config)):
        shared += [flag, value] if value else []
    for text in cfg.set or ():
        setting, values = parse_assignment(text, "--set")
        if len(values) != 1:
            raise UserError(f"--set {text!r}: one value per setting")
        shared += as_flags(setting, values[0], parser, f"--set {text}")
    if cfg.steps:
        shared += ["--steps", str(cfg.steps)]
    if cfg.minutes:
        shared += ["--minutes", str(cfg.minutes)]
    return shared
