"""The command line: `attnlab train | generate | eval | predict | data | bench | list ...`.

Every command is one file of `commands/`, found through the `COMMANDS` registry; its flags are
generated from its dataclasses. A `UserError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .commands.base import add_command_flags
from .device import keep_freed_memory
from .errors import UserError
from .registry import COMMANDS


class Parser(argparse.ArgumentParser):
    """argparse, with its complaints as one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("attnlab").strip()
        self.exit(2, f"attnlab: error: {command + ': ' if command else ''}{message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="attnlab", description="Build, train, compare and look inside transformers."
    )
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {
        (): parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    }
    members: dict[tuple[str, ...], list[str]] = {}
    for command in COMMANDS.values():
        for depth in range(1, len(command.words)):
            members.setdefault(command.words[:depth], []).append(command.words[depth])
    for command in COMMANDS.values():
        for depth in range(1, len(command.words)):
            words = command.words[:depth]
            if words not in groups:
                what = ", ".join(dict.fromkeys(members[words]))
                group = groups[words[:-1]].add_parser(words[-1], help=f"{words[-1]}: {what}")
                groups[words] = group.add_subparsers(
                    dest="_".join(words), required=True, metavar="WHAT"
                )
        sub = groups[command.words[:-1]].add_parser(command.words[-1], help=command.help)
        add_command_flags(sub, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        keep_freed_memory()
        return args.handler(args)
    except UserError as error:
        print(f"attnlab: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
