"""Writing files so that a reader never sees half of one: every file of attnlab (run folders,
tokenizers, the encoded-corpus cache, downloads) is written under a temporary name beside its
target and renamed into place in one step, so an interrupted write leaves the previous version
intact.

Files end up with the permissions the user's umask gives new files (as `open` would), not the
0600 of the temporary file, so a shared run folder stays readable to colleagues.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UserError

TEMPORARY_SUFFIX = ".tmp"


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)`, then move the result onto `path` in one step. If `write`
    fails (an error, a full disk, an interrupt) the temporary file is removed and `path` keeps
    its old content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as error:
        raise UserError(f"{path}: could not write ({error.strerror or error})") from error
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """The parsed JSON of `path`; a missing or malformed file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from error


def read_json_object(path: str | os.PathLike, what: str, keys: tuple[str, ...] = ()) -> dict:
    """Like `read_json`, insisting on a JSON object that holds `keys`."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a valid {what} (expected a JSON object)")
    missing = [key for key in keys if key not in data]
    if missing:
        raise UserError(f"{path}: not a valid {what} (no {', '.join(map(repr, missing))})")
    return data


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete what interrupted atomic writes left in `folder` (`.NAME.XXXX.tmp`)."""
    folder = Path(folder)
    stale = [p for p in folder.glob(f".*{TEMPORARY_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
