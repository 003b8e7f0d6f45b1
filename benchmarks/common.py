"""Helpers for benchmark scripts: run attnlab commands and collect their JSON results."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ATTNLAB = [sys.executable, "-m", "attnlab"]


def attnlab(*args: str, log: Path | None = None, echo: bool = False) -> tuple[dict | None, float]:
    """Run `attnlab ARGS`; return the JSON object on its last line (if any) and the seconds.
    `echo`: show its output as it comes (a long `compare`), rather than only on failure."""
    command = [*ATTNLAB, *map(str, args)]
    print("$ attnlab " + shlex.join(command[3:]), flush=True)
    started = time.perf_counter()
    if echo:
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        print(result.stdout, end="", flush=True)
        result.stderr = ""
    else:
        result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}):\n{result.stderr[-2000:]}")
    lines = result.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), seconds
    except (IndexError, json.JSONDecodeError):
        return None, seconds


def results_of(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of `rows` restricted to `columns`."""

    def cell(value):
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
