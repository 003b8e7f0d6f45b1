"""Encoded corpora cached as memory-mapped arrays, so a corpus is tokenized once per
tokenizer and read from disk without loading it into memory; and trained tokenizers cached by
the text they learned from, so a run on the same corpus does not learn them again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .download import cache_dir
from .tokenizers import Tokenizer, load_tokenizer, train_tokenizer

SAMPLE_PIECE = 1 << 16  # bytes per piece of an evenly spread sample


def encode_cached(tokenizer: Tokenizer, text: bytes, folder: Path | None = None) -> np.ndarray:
    """`tokenizer.encode(text)` as a read-only memory-mapped array, cached by content. A cache
    file that cannot be read (truncated, overwritten) is encoded again."""
    key = hashlib.sha256(text)
    key.update(tokenizer.identity().encode())
    path = (folder or cache_dir()) / "encoded" / f"{key.hexdigest()[:32]}.npy"
    if path.exists():
        try:
            return np.load(path, mmap_mode="r")
        except (ValueError, OSError, EOFError):
            pass  # written again below
    ids = tokenizer.encode(text)
    dtype = np.uint8 if tokenizer.vocab_size <= 256 else np.uint16
    if tokenizer.vocab_size > 65536:
        dtype = np.int32

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, ids.astype(dtype))

    atomic_write(path, write)
    return np.load(path, mmap_mode="r")


def spread_sample(text: bytes, size: int) -> bytes:
    """About `size` bytes of `text` in pieces taken at even intervals over all of it, so a
    sample of a corpus that changes along its length (documentation, then code) has some of
    each; the whole text if it is not longer. Pieces are joined at line breaks."""
    if size <= 0 or len(text) <= size:
        return text
    pieces = max(1, size // SAMPLE_PIECE)
    stride = len(text) // pieces
    return b"\n".join(text[i * stride : i * stride + SAMPLE_PIECE] for i in range(pieces))


def train_cached(kind: str, text: bytes, vocab_size: int | None, folder: Path | None = None
                 ) -> Tokenizer:  # fmt: skip
    """`train_tokenizer(kind, [text], vocab_size)`, read from the cache when this text and
    these settings were learned from before (a tokenizer folder of JSON, never unpickled)."""
    key = hashlib.sha256(text)
    key.update(json.dumps([kind, vocab_size]).encode())
    path = (folder or cache_dir()) / "tokenizers" / key.hexdigest()[:32]  # a tokenizer's folder
    if path.exists():
        try:
            return load_tokenizer(path)
        except Exception:  # an unreadable cache file is learned and written again
            pass
    tokenizer = train_tokenizer(kind, [text.decode("utf-8", "replace")], vocab_size)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(path)
    return tokenizer
