"""Tokenizers shared by language models and classifiers, saved as one JSON file.

Five kinds:
- `bytes`: the 256 byte values of UTF-8, the seed's own input (no training, nothing unknown);
- `chars`: the characters seen in training, plus padding and an unknown id;
- `words`: lower-cased words and punctuation runs, the most frequent up to a cap (50,000 by
  default, the vocabulary of the seed's IMDb classifier), plus padding and an unknown id;
- `bpe`: byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2's byte-level variant),
  which encodes any text and decodes it back exactly, so bits per byte stay exact;
- `wordpiece`: BERT's sub-word units (Wu et al. 2016; Devlin et al. 2019), lower-cased, with
  BERT's special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` (ids 0 to 4).

Special tokens (`special_tokens`: name -> id) are never read from text ("[MASK]" typed in a
text is text); code that needs one inserts its id. Bytes may carry them too, with ids after the
256 bytes (`ByteTokenizer(MLM_SPECIALS)`; none by default).

`words`, `bpe` and `wordpiece` are built with the HuggingFace `tokenizers` library, trained on
the given texts only; its own JSON description sits inside the file `save` writes.

Padding: every kind pads with id 0 (`pad_id`). For `chars`, `words` and `wordpiece` id 0 is a
reserved padding token. For `bytes` and `bpe` it is an ordinary token (the NUL byte, the first
byte symbol), because a language model over bytes must keep exactly 256 ids and byte-level BPE
must keep every id a real piece of text. That is safe because classification batches always
carry a mask, and the classifier ignores masked positions in attention and in pooling.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from ..errors import UserError
from ..io import read_json, write_json

FORMAT_VERSION = 1
# Vocabulary sizes, counting reserved ids, when none is given; `chars` keeps every character.
DEFAULT_VOCAB = {"bytes": 256, "words": 50_000, "bpe": 4_096, "wordpiece": 8_192}
MLM_SPECIALS = ("[CLS]", "[SEP]", "[MASK]")  # BERT's special tokens beyond [PAD] and [UNK]
WORD_BYTES = np.array([b >= 0x80 or chr(b).isalnum() or chr(b) == "_" for b in range(256)])
# Texts longer than this are encoded in pieces, split where every kind's pre-tokenizer splits
# anyway, so HuggingFace can spread a large corpus over all cores.
CHUNK_CHARS = 1 << 20


def as_text(text: str | bytes) -> str:
    return text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text


def as_ids(ids: Any) -> np.ndarray:
    """Ids from a list, a NumPy array or a tensor (on any device) as a flat int64 array."""
    if hasattr(ids, "detach"):
        ids = ids.detach().cpu().numpy()
    return np.asarray(ids, dtype=np.int64).reshape(-1)


class Tokenizer:
    """Text <-> integer ids. Subclasses fill `kind`, `vocab_size`, the codec and the state."""

    kind: ClassVar[str]
    vocab_size: int
    pad_id: int | None = 0
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

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to `path` as JSON (written atomically)."""
        data = {"format_version": FORMAT_VERSION, "kind": self.kind, **self.state()}
        write_json(path, data)

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
        data = text.encode("utf-8", errors="surrogatepass") if isinstance(text, str) else text
        return np.frombuffer(data, dtype=np.uint8).astype(np.int32)

    def decode(self, ids: Any) -> str:
        ids = as_ids(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"byte ids must lie in 0..{self.vocab_size - 1}")
        table = [bytes((b,)) for b in range(256)] + [n.encode() for n in self.special_tokens]
        return b"".join(table[i] for i in ids.tolist()).decode("utf-8", errors="replace")

    def continues_word(self, ids: np.ndarray) -> np.ndarray:
        """A byte continues a word if it and the byte before it are both word bytes (ASCII
        letters, digits, underscore, or any byte of a non-ASCII character)."""
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


def split_points(text: str) -> list[int]:
    """Offsets about CHUNK_CHARS apart where `text` may be cut without changing its tokens: just
    before a newline that follows a non-space character. Every pre-tokenizer used here (GPT-2's
    byte-level pattern, BERT's and the plain whitespace splitter) separates a non-space character
    from the whitespace after it, and none looks back across that boundary."""
    cuts = [0]
    while True:
        cut = text.find("\n", cuts[-1] + CHUNK_CHARS)
        while cut > 0 and text[cut - 1].isspace():
            cut = text.find("\n", cut + 1)
        if cut <= 0:
            return cuts + [len(text)]
        cuts.append(cut)


class HuggingFaceTokenizer(Tokenizer):
    """A tokenizer built with the HuggingFace `tokenizers` library; subclasses say how."""

    skip_pad = True
    reserved: ClassVar[int]  # ids present before training: padding and unknown, or the bytes

    def __init__(self, hf: HFTokenizer):
        self.hf = hf
        self.vocab_size = hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str | bytes) -> np.ndarray:
        text = as_text(text)
        if len(text) <= CHUNK_CHARS:
            return np.array(self.hf.encode(text, add_special_tokens=False).ids, dtype=np.int32)
        cuts = split_points(text)
        pieces = self.encode_batch([text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)])
        return np.concatenate(pieces)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        encodings = self.hf.encode_batch_fast([as_text(t) for t in texts], add_special_tokens=False)
        return [np.array(e.ids, dtype=np.int32) for e in encodings]

    def decode(self, ids: Any) -> str:
        ids = as_ids(ids)
        if self.skip_pad:
            ids = ids[ids != self.pad_id]
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"{self.kind} ids must lie in 0..{self.vocab_size - 1}")
        return self.hf.decode(ids.tolist(), skip_special_tokens=False)

    def state(self) -> dict[str, Any]:
        return {"huggingface": json.loads(self.hf.to_str())}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        return cls(HFTokenizer.from_str(json.dumps(state["huggingface"])))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None) -> Tokenizer:
        vocab_size = vocab_size or DEFAULT_VOCAB[cls.kind]
        if vocab_size <= cls.reserved:
            raise UserError(
                f"{cls.kind}: vocab_size must be more than {cls.reserved} (the ids every "
                f"{cls.kind} tokenizer holds before training), got {vocab_size}"
            )
        hf, trainer = cls.untrained(vocab_size)
        hf.train_from_iterator(texts, trainer)
        if hf.get_vocab_size() <= cls.reserved:
            raise UserError(f"{cls.kind}: too little text to learn a vocabulary from")
        return cls(hf)

    @staticmethod
    def untrained(vocab_size: int) -> tuple[HFTokenizer, trainers.Trainer]:
        raise NotImplementedError


class WordTokenizer(HuggingFaceTokenizer):
    """Lower-cased words (runs of letters, digits, underscore) and punctuation runs; the
    `vocab_size - 2` most frequent, id 0 `<pad>`, id 1 `<unk>`. Decoding joins with spaces."""

    kind = "words"
    reserved = 2

    @staticmethod
    def untrained(vocab_size: int) -> tuple[HFTokenizer, trainers.Trainer]:
        hf = HFTokenizer(models.WordLevel(unk_token="<unk>"))
        hf.normalizer = normalizers.Lowercase()
        hf.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, special_tokens=["<pad>", "<unk>"], show_progress=False
        )
        return hf, trainer


class BPETokenizer(HuggingFaceTokenizer):
    """Byte-level BPE: text -> UTF-8 bytes -> merged byte pairs. All 256 bytes are in the
    vocabulary whether seen or not, there are no special tokens, and nothing is normalised, so
    `decode(encode(text)) == text` for any text."""

    kind = "bpe"
    reserved = 256
    skip_pad = False  # id 0 is a byte, not padding

    @staticmethod
    def untrained(vocab_size: int) -> tuple[HFTokenizer, trainers.Trainer]:
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        return hf, trainer


class WordPieceTokenizer(HuggingFaceTokenizer):
    """BERT's uncased WordPiece: lower-cased, accents stripped, words split into the longest
    known pieces (`##` marks a continuation); ids 0-4 `[PAD] [UNK] [CLS] [SEP] [MASK]` (files
    written before `[CLS]` was added hold the first two only)."""

    kind = "wordpiece"
    reserved = 5

    def __init__(self, hf: HFTokenizer):
        super().__init__(hf)
        hf.encode_special_tokens = True  # "[MASK]" typed in a text is text, not the token
        vocab = hf.get_vocab(with_added_tokens=True)
        names = ("[PAD]", "[UNK]", *MLM_SPECIALS)
        self.special_tokens = {name: vocab[name] for name in names if name in vocab}
        self.continuations = np.zeros(self.vocab_size, dtype=bool)  # pieces that go on a word
        self.continuations[[i for piece, i in vocab.items() if piece.startswith("##")]] = True

    def continues_word(self, ids: np.ndarray) -> np.ndarray:
        return self.continuations[np.asarray(ids)]

    @staticmethod
    def untrained(vocab_size: int) -> tuple[HFTokenizer, trainers.Trainer]:
        hf = HFTokenizer(models.WordPiece(unk_token="[UNK]"))
        hf.normalizer = normalizers.BertNormalizer(lowercase=True)
        hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        hf.decoder = decoders.WordPiece()
        specials = ["[PAD]", "[UNK]", *MLM_SPECIALS]
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=specials, show_progress=False
        )
        return hf, trainer


KINDS: dict[str, type[Tokenizer]] = {
    cls.kind: cls
    for cls in (ByteTokenizer, CharTokenizer, WordTokenizer, BPETokenizer, WordPieceTokenizer)
}


def check_kind(kind: str) -> type[Tokenizer]:
    if kind not in KINDS:
        raise UserError(f"unknown tokenizer {kind!r}; choose one of: {', '.join(KINDS)}")
    return KINDS[kind]


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int | None = None) -> Tokenizer:
    """A tokenizer of `kind` learned from `texts` (`bytes` needs none). `vocab_size` counts
    every id, reserved ones included; None takes the kind's default (all characters seen for
    `chars`)."""
    return check_kind(kind).train(texts, vocab_size)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer saved at `path`."""
    path = Path(path)
    data = read_json(path, "tokenizer")
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        kind = data.get("kind") if isinstance(data, dict) else None
        raise UserError(
            f"{path}: not an attnlab tokenizer (kind {kind!r}, expected one of {', '.join(KINDS)})"
        )
    version = data.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(
            f"{path}: format version {version} was written by a newer attnlab; upgrade attnlab"
        )
    try:
        return KINDS[data["kind"]].from_state(data)
    except Exception as error:  # a hand-edited or truncated file fails anywhere inside
        raise UserError(f"{path}: corrupt {data['kind']} tokenizer ({error})") from error
