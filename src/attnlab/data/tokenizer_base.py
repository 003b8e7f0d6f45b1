"""What every tokenizer shares, and the two that need no library: bytes and characters."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import files
from ..errors import UserError
from ..io import write_json, write_text

# 2: the settings file beside HuggingFace's own tokenizer.json, instead of one wrapping it.
FORMAT_VERSION = 2
# Texts longer than this are encoded in pieces, split where every kind's pre-tokenizer splits
# anyway, so HuggingFace can spread a large corpus over all cores.
CHUNK_CHARS = 1 << 20
MLM_SPECIALS = ("[CLS]", "[SEP]", "[MASK]")  # BERT's special tokens beyond [PAD] and [UNK]
# Bytes that belong to words (whole-word masking): ASCII letters, digits, "_", and non-ASCII.
WORD_BYTES = np.array([b >= 0x80 or chr(b).isalnum() or chr(b) == "_" for b in range(256)])


def as_text(text: str | bytes) -> str:
    return text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text


def as_bytes(text: str | bytes) -> bytes:
    """The bytes of a text. A str that came from bytes that are not UTF-8 (Python's
    `surrogateescape`, as for command-line arguments) gives those bytes back."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")


def as_ids(ids: Any) -> np.ndarray:
    """Ids from a list, a NumPy array or a tensor (on any device) as a flat int64 array."""
    if hasattr(ids, "detach"):
        ids = ids.detach().cpu().numpy()
    return np.asarray(ids, dtype=np.int64).reshape(-1)


class Tokenizer:
    """Text <-> integer ids. Subclasses fill `kind`, `vocab_size`, the codec and the state;
    those built with HuggingFace `tokenizers` keep it in `hf`."""

    kind: ClassVar[str]
    vocab_size: int
    pad_id: int | None = 0
    hf: Any = None
    special_tokens: dict[str, int] = {}  # name -> id; none unless a kind says otherwise

    def encode(self, text: str | bytes) -> np.ndarray:
        """The ids of `text` as an int32 array."""
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: Any) -> str:
        raise NotImplementedError

    def continues_word(self, ids: np.ndarray) -> np.ndarray:
        """For each id of a token sequence, whether that token continues the word of the token
        before it (the unit of whole-word masking). Kinds without words raise a UserError."""
        raise UserError(f"the {self.kind} tokenizer does not mark words")

    def state(self) -> dict[str, Any]:
        """What `from_state` needs to rebuild this tokenizer, as JSON-ready data."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        raise NotImplementedError

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None) -> Tokenizer:
        raise NotImplementedError

    def identity(self) -> str:
        """A text that tells this tokenizer from any other (a cache key)."""
        hf = self.hf.to_str() if self.hf is not None else ""
        return json.dumps({"kind": self.kind, **self.state()}, sort_keys=True) + hf

    def save(self, folder: str | os.PathLike) -> None:
        """Write the tokenizer into `folder`: its settings (`tokenizer_attnlab.json`) and, for
        kinds built with HuggingFace `tokenizers`, HuggingFace's own `tokenizer.json` as is,
        which `tokenizers.Tokenizer.from_file` reads. Written atomically."""
        folder = Path(folder)
        settings = {"format_version": FORMAT_VERSION, "kind": self.kind, **self.state()}
        if self.hf is not None:
            write_text(folder / files.TOKENIZER, self.hf.to_str(pretty=True))
        write_json(folder / files.TOKENIZER_SETTINGS, settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, vocab_size={self.vocab_size})"


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255, then any `specials` given, decoded as their names. Decoding
    replaces broken sequences (a sample cut mid-character) with U+FFFD instead of failing."""

    kind = "bytes"

    def __init__(self, specials: Iterable[str] = ()):
        self.special_tokens = {name: 256 + i for i, name in enumerate(specials)}
        self.vocab_size = 256 + len(self.special_tokens)

    def encode(self, text: str | bytes) -> np.ndarray:
        return np.frombuffer(as_bytes(text), dtype=np.uint8).astype(np.int32)

    def decode(self, ids: Any) -> str:
        ids = as_ids(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"byte ids must lie in 0..{self.vocab_size - 1}")
        if not self.special_tokens:
            return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")
        table = [bytes((b,)) for b in range(256)] + [n.encode() for n in self.special_tokens]
        return b"".join(table[i] for i in ids.tolist()).decode("utf-8", errors="replace")

    def continues_word(self, ids: np.ndarray) -> np.ndarray:
        """A byte continues a word if it and the byte before it are both word bytes."""
        word = np.append(WORD_BYTES, np.zeros(len(self.special_tokens), dtype=bool))[ids]
        follows = np.zeros_like(word)
        follows[..., 1:] = word[..., 1:] & word[..., :-1]
        return follows

    def state(self) -> dict[str, Any]:
        return {"specials": list(self.special_tokens)} if self.special_tokens else {}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        specials = state.get("specials", [])
        if not isinstance(specials, list) or not all(isinstance(x, str) for x in specials):
            raise ValueError("'specials' must be a list of token names")
        return cls(specials)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None) -> Tokenizer:
        if vocab_size not in (None, 256):
            raise UserError(f"the bytes tokenizer has exactly 256 ids, not vocab_size={vocab_size}")
        return cls()


def code_points(text: str) -> np.ndarray:
    """The Unicode code points of `text` as a uint32 array."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


class CharTokenizer(Tokenizer):
    """Characters seen in training (the most frequent `vocab_size - 2` if capped). Id 0 pads,
    id 1 stands for any other character and decodes as U+FFFD."""

    kind = "chars"
    unk_id = 1
    specials = 2

    def __init__(self, chars: str):
        self.chars = chars
        self.points = np.sort(code_points(chars))  # searchsorted needs them sorted
        self.vocab_size = len(chars) + self.specials

    def encode(self, text: str | bytes) -> np.ndarray:
        text = as_text(text)
        pieces = []
        for start in range(0, len(text), CHUNK_CHARS):  # bounds the temporary arrays
            points = code_points(text[start : start + CHUNK_CHARS])
            where = np.searchsorted(self.points, points).clip(max=max(len(self.points) - 1, 0))
            known = self.points[where] == points if len(self.points) else np.zeros_like(points)
            pieces.append(np.where(known, where + self.specials, self.unk_id).astype(np.int32))
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)

    def decode(self, ids: Any) -> str:
        ids = as_ids(ids)
        ids = ids[ids != self.pad_id]
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"char ids must lie in 0..{self.vocab_size - 1}")
        table = np.concatenate([np.array([0, 0xFFFD], dtype=np.uint32), self.points])
        return table[ids].astype("<u4").tobytes().decode("utf-32-le", errors="replace")

    def state(self) -> dict[str, Any]:
        return {"chars": self.chars}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        chars = state["chars"]
        if not isinstance(chars, str) or len(set(chars)) != len(chars):
            raise ValueError("'chars' must be a string of distinct characters")
        return cls(chars)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None) -> Tokenizer:
        if vocab_size is not None and vocab_size < cls.specials + 1:
            raise UserError(f"chars: vocab_size must be at least 3, got {vocab_size}")
        counts: dict[int, int] = {}
        for text in texts:
            for start in range(0, len(text), CHUNK_CHARS):
                points, n = np.unique(
                    code_points(text[start : start + CHUNK_CHARS]), return_counts=True
                )
                for point, count in zip(points.tolist(), n.tolist(), strict=True):
                    counts[point] = counts.get(point, 0) + count
        if not counts:
            raise UserError("chars: no text to learn characters from")
        # Most frequent first, ties by code point, so the result does not depend on text order.
        ranked = sorted(counts, key=lambda p: (-counts[p], p))
        if vocab_size is not None:
            ranked = ranked[: vocab_size - cls.specials]
        return cls("".join(chr(p) for p in sorted(ranked)))
