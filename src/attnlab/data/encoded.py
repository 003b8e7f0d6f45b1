"""Encoded corpora cached as memory-mapped arrays, so a corpus is tokenized once per
tokenizer and read from disk without loading it into memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .download import cache_dir
from .tokenizers import Tokenizer


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
