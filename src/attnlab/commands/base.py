"""A command: its words on the command line, its help, the dataclasses its flags come from,
and the function that runs it. Flags are generated from the dataclasses' fields: a field's
help, default, allowed values and bounds are its flag's."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import check_fields, option_names, options_of
from ..errors import UserError
from ..registry import COMMANDS


@dataclass
class Command:
    """`words` on the command line (("train", "lm")), `help`, and `configs`: (title,
    dataclass) pairs whose fields are its flags. `run(args)` returns the exit status."""

    words: tuple[str, ...]
    help: str
    configs: tuple[tuple[str, type], ...]
    run: Callable[[argparse.Namespace], int]
    # configs (of `configs`) whose variants' options get flags: --VARIANT.OPTION
    variant_options: tuple[type, ...] = ()
    choices: dict[str, Iterable[str]] = field(default_factory=dict)  # per-command choices
    skip: dict[str, tuple[str, ...]] = field(default_factory=dict)  # title -> fields left out
    extra_flags: Callable[[argparse.ArgumentParser], None] | None = None


def register(command: Command) -> Command:
    COMMANDS.add(" ".join(command.words), command)
    return command


def add_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    title: str,
    *,
    prefix: str = "",
    choices: dict[str, Iterable[str]] | None = None,
    skip: Iterable[str] = (),
) -> None:
    """One flag per field of `cls` (`--prefix.field-name`); a flag left out is absent from the
    parsed namespace, so settings can fall back to a preset or a saved run."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata or f.name in skip:
            continue
        meta = f.metadata
        allowed = (choices or {}).get(f.name, meta["choices"])
        allowed = list(allowed) if allowed is not None else None
        shown = " ".join(map(str, f.default)) if meta["many"] and f.default else f.default
        default = "" if f.default in (None, "", ()) else f" (default: {shown})"
        if meta["positional"]:
            parser.add_argument(f.name, help=meta["help"], metavar=f.name.upper())
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        dest = prefix + f.name
        if meta["kind"] is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=meta["help"] + default)  # fmt: skip
            continue
        group.add_argument(
            flag,
            dest=dest,
            type=meta["kind"],
            choices=allowed,
            nargs="+" if meta["many"] else None,
            default=argparse.SUPPRESS,
            help=meta["help"] + default,
            metavar=None if allowed else f.name.upper(),
        )


def given(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The fields of `cls` given on the command line."""
    return {
        f.name: getattr(args, prefix + f.name)
        for f in dataclasses.fields(cls)
        if hasattr(args, prefix + f.name)
    }


def add_variant_flags(parser: argparse.ArgumentParser, config: type) -> None:
    """`--VARIANT.OPTION` for every option of every variant a config can choose
    (`config.VARIANTS`: setting -> registry)."""
    for setting, registry in config.VARIANTS.items():
        for name, variant in registry.items():
            if option_names(variant):
                title = f"--{setting} {name}"
                add_flags(parser, options_of(variant), title, prefix=f"{name}.")


def given_variant_options(args: argparse.Namespace, config: type) -> dict[str, dict[str, Any]]:
    """The variant options given for a config, nested by variant: {"nystrom": {"landmarks":
    32}}."""
    options: dict[str, dict[str, Any]] = {}
    for registry in config.VARIANTS.values():
        for name, variant in registry.items():
            values = given(args, options_of(variant), prefix=f"{name}.")
            if values:
                options[name] = values
    return options


def add_command_flags(parser: argparse.ArgumentParser, command: Command) -> None:
    """Every flag of a command, generated from its dataclasses."""
    for title, cls in command.configs:
        add_flags(parser, cls, title, choices=command.choices, skip=command.skip.get(title, ()))
    for config in command.variant_options:
        add_variant_flags(parser, config)
    if command.extra_flags:
        command.extra_flags(parser)
    parser.set_defaults(handler=command.run)


class CheckingParser(argparse.ArgumentParser):
    """A parser for flags that a command builds itself (a run of `compare`, a trial of
    `search`): a bad flag is a UserError naming `where`, not an exit."""

    def __init__(self, where: str, **kwargs: Any):
        super().__init__(add_help=False, **kwargs)
        self.where = where

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{self.where}: {message}")


def command_parser(command: Command, where: str) -> CheckingParser:
    """A parser of one command's flags that raises UserError."""
    parser = CheckingParser(where, prog="attnlab " + " ".join(command.words))
    add_command_flags(parser, command)
    return parser


def print_json(result: dict[str, Any]) -> None:
    """The one JSON object a `--json` command prints on its last line."""
    print(json.dumps(result, sort_keys=True, default=str))


def build(cls: type, args: argparse.Namespace) -> Any:
    """The command's settings from its flags (defaults from the dataclass), checked."""
    settings = cls(**given(args, cls))
    check_fields(settings)
    return settings
