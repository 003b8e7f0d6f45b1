"""Text corpora for language models: where the bytes come from and how they are split.

Three sources, all read as raw bytes:

- a file, or a folder of files (recursive, chosen by a glob), split 90/5/5 into contiguous
  train / valid / test parts;
- ``stdlib``: the running interpreter's own standard-library source and the `pydoc` topics,
  a corpus every machine with Python already has, so the main job needs no download;
- ``enwik8``: the Hutter Prize file (the first 10⁸ bytes of an English Wikipedia dump), split
  90M / 5M / 5M bytes as in the literature.
"""

from __future__ import annotations

import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .download import fetch

ENWIK8_URL = "http://mattmahoney.net/dc/enwik8.zip"
ENWIK8_SHA256 = "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc"
ENWIK8_SPLIT = (90_000_000, 5_000_000, 5_000_000)

# Standard-library folders left out of the default corpus: tests hold deliberately odd
# encodings and generated data; the rest are third-party or retired code.
STDLIB_SKIP = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__"}


@dataclass
class TextSplits:
    """A corpus cut into three contiguous parts, and a line saying where it came from."""

    source: str
    train: bytes
    valid: bytes
    test: bytes

    def __getitem__(self, split: str) -> bytes:
        if split == "all":
            return self.train + self.valid + self.test
        return getattr(self, split)


def split_bytes(text: bytes, valid_fraction: float, test_fraction: float) -> tuple[bytes, ...]:
    """Contiguous train / valid / test parts: the last `test_fraction` is the test set."""
    n = len(text)
    n_test, n_valid = int(n * test_fraction), int(n * valid_fraction)
    n_train = n - n_valid - n_test
    return text[:n_train], text[n_train : n_train + n_valid], text[n_train + n_valid :]


def stdlib_files() -> list[Path]:
    """The standard library's `.py` files in a fixed (sorted) order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        p
        for p in root.rglob("*.py")
        if p.is_file() and not STDLIB_SKIP & set(p.relative_to(root).parts)
    )


def read_stdlib() -> tuple[str, bytes]:
    from pydoc_data.topics import topics

    files = stdlib_files()
    sources = [p.read_bytes() for p in files]
    docs = "\n\n".join(topics[name] for name in sorted(topics)).encode("utf-8")
    # The documentation goes first, so the held-out tail is source code like most of the text.
    text = docs + b"\n" + b"\n".join(sources)
    version = ".".join(map(str, sys.version_info[:3]))
    where = files[0].parent if files else sysconfig.get_paths()["stdlib"]
    return (
        f"Python {version} standard library: {len(files)} files from {where} + pydoc topics",
        text,
    )


def read_path(path: Path, glob: str) -> tuple[str, bytes]:
    if path.is_file():
        return str(path), path.read_bytes()
    if path.is_dir():
        files = sorted(
            p
            for p in path.glob(glob)
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise UserError(f"{path}: no files match --glob {glob!r}")
        return f"{path} ({len(files)} files matching {glob!r})", b"\n".join(
            p.read_bytes() for p in files
        )
    raise UserError(
        f"{path}: no such file or folder (give a text file, a folder, stdlib or enwik8)"
    )


def read_enwik8(url: str | None = None, sha256: str | None = None) -> tuple[str, bytes]:
    archive = fetch(url or ENWIK8_URL, sha256 or ENWIK8_SHA256, "enwik8.zip")
    try:
        with zipfile.ZipFile(archive) as z:
            text = z.read("enwik8")
    except (zipfile.BadZipFile, KeyError) as error:
        raise UserError(f"{archive}: not the enwik8 archive ({error})") from error
    if len(text) != sum(ENWIK8_SPLIT):
        raise UserError(f"{archive}: enwik8 holds {len(text):,} bytes, not {sum(ENWIK8_SPLIT):,}")
    return f"enwik8 from {archive}", text


def load_text(
    data: str, glob: str = "**/*", valid_fraction: float = 0.05, test_fraction: float = 0.05
) -> TextSplits:
    """Read a corpus named by `--data` and split it."""
    if data == "enwik8":
        source, text = read_enwik8()
        a, b = ENWIK8_SPLIT[0], ENWIK8_SPLIT[0] + ENWIK8_SPLIT[1]
        return TextSplits(source, text[:a], text[a:b], text[b:])
    source, text = read_stdlib() if data == "stdlib" else read_path(Path(data), glob)
    if not text.strip():
        raise UserError(f"{source}: the text is empty")
    return TextSplits(source, *split_bytes(text, valid_fraction, test_fraction))
