"""Encoded corpora cached as memory-mapped arrays, so a corpus is tokenized once per
tokenizer and read from disk without loading it into memory."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .download import cache_dir
from .tokenizers import Tokenizer


def encode_cached(tokenizer: Tokenizer, text: bytes, folder: Path | None = None) -> np.ndarray:
    """`tokenizer.encode(text)` as a read-only memory-mapped array, cached by content."""
    key = hashlib.sha256(text)
    key.update(json.dumps(tokenizer.state(), sort_keys=True).encode())
    folder = (folder or cache_dir()) / "encoded"
    path = folder / f"{key.hexdigest()[:32]}.npy"
    if not path.exists():
        ids = tokenizer.encode(text)
        dtype = np.uint8 if tokenizer.vocab_size <= 256 else np.uint16
        if tokenizer.vocab_size > 65536:
            dtype = np.int32
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, ids.astype(dtype))
        os.replace(tmp, path)
    return np.load(path, mmap_mode="r")
