"""Tokenizers shared by language models and classifiers, saved as one JSON file.

Five kinds:
- `bytes`: the 256 byte values of UTF-8, the seed's own input (no training, nothing unknown);
- `chars`: the characters seen in training, plus padding and an unknown id;
- `words`: lower-cased words and punctuation runs, the most frequent up to a cap (50,000 by
  default, the vocabulary of the seed's IMDb classifier), plus padding and an unknown id;
- `bpe`: byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2's byte-level variant),
  which encodes any bytes, UTF-8 or not, and decodes them back exactly, so bits per byte are
  always those of the bytes on disk;
- `wordpiece`: BERT's sub-word units (Wu et al. 2016; Devlin et al. 2019), lower-cased, with
  BERT's special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` (ids 0 to 4).

Special tokens (`special_tokens`: name -> id) are never read from text ("[MASK]" typed in a
text is text); code that needs one inserts its id. Bytes may carry them too, with ids after the
256 bytes (`ByteTokenizer(MLM_SPECIALS)`; none by default).

`words`, `bpe` and `wordpiece` are built with the HuggingFace `tokenizers` library, trained on
the given texts only, and saved as HuggingFace's own `tokenizer.json` (which its library reads
as is) beside attnlab's `tokenizer_attnlab.json`, which names the kind.

Padding: every kind pads with id 0 (`pad_id`). For `chars`, `words` and `wordpiece` id 0 is a
reserved padding token. For `bytes` and `bpe` it is an ordinary token (the NUL byte, the first
byte symbol), because a language model over bytes must keep exactly 256 ids and byte-level BPE
must keep every id a real piece of text. That is safe because classification batches always
carry a mask, and the classifier ignores masked positions in attention and in pooling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from .. import files
from ..errors import UserError
from ..io import read_json_object
from ..progress import progress
from .tokenizer_base import (
    CHUNK_CHARS,
    FORMAT_VERSION,
    MLM_SPECIALS,
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    as_bytes,
    as_ids,
    as_text,
)

# Vocabulary sizes, counting reserved ids, when none is given; `chars` keeps every character.
DEFAULT_VOCAB = {"bytes": 256, "words": 50_000, "bpe": 4_096, "wordpiece": 8_192}
# Encoding or training on more text than this shows a progress bar; encoding goes in groups.
SHOW_PROGRESS_CHARS = 4 << 20
ENCODE_GROUP = 64
# Python's `surrogateescape` turns each byte that is not part of valid UTF-8 into one of these.
NOT_UTF8 = re.compile("([\udc80-\udcff]+)")


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
        """Many texts at once, spread over the cores; a bar for a large corpus."""
        texts = [as_text(t) for t in texts]
        groups = [texts[i : i + ENCODE_GROUP] for i in range(0, len(texts), ENCODE_GROUP)]
        if sum(map(len, texts)) < SHOW_PROGRESS_CHARS:
            groups = [texts]
        ids = []
        for group in progress(groups, len(groups), f"encoding with {self.kind}", unit="group"):
            encodings = self.hf.encode_batch_fast(group, add_special_tokens=False)
            ids += [np.array(e.ids, dtype=np.int32) for e in encodings]
        return ids

    def decode(self, ids: Any) -> str:
        ids = as_ids(ids)
        if self.skip_pad:
            ids = ids[ids != self.pad_id]
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"{self.kind} ids must lie in 0..{self.vocab_size - 1}")
        return self.hf.decode(ids.tolist(), skip_special_tokens=False)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None) -> Tokenizer:
        vocab_size = vocab_size or DEFAULT_VOCAB[cls.kind]
        if vocab_size <= cls.reserved:
            raise UserError(
                f"{cls.kind}: vocab_size must be more than {cls.reserved} (the ids every "
                f"{cls.kind} tokenizer holds before training), got {vocab_size}"
            )
        hf, trainer = cls.untrained(vocab_size)
        texts = list(texts)
        trainer.show_progress = sum(map(len, texts)) >= SHOW_PROGRESS_CHARS  # its own bar
        hf.train_from_iterator(texts, trainer)
        if hf.get_vocab_size() <= cls.reserved:
            raise UserError(f"{cls.kind}: too little text to learn a vocabulary from")
        return cls(hf)

    @staticmethod
    def untrained(vocab_size: int) -> tuple[HFTokenizer, trainers.Trainer]:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {}  # HuggingFace's own file holds the rest


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


def byte_symbols() -> list[str]:
    """GPT-2's byte-level alphabet (Radford et al. 2019, §2.2): one printable character per
    byte value. Printable bytes stand for themselves; the others are moved above 255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    moved = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(moved)) for b in range(256)]


class BPETokenizer(HuggingFaceTokenizer):
    """Byte-level BPE: text -> UTF-8 bytes -> merged byte pairs. All 256 bytes are in the
    vocabulary whether seen or not, there are no special tokens, and nothing is normalised.

    It is exact on any bytes: runs of valid UTF-8 are merged as usual; a byte that is not part
    of valid UTF-8 becomes its own byte token. So `decode_bytes(encode(data)) == data` for any
    data, and bits per byte are always those of the bytes given."""

    kind = "bpe"
    reserved = 256
    skip_pad = False  # id 0 is a byte, not padding

    def __init__(self, hf: HFTokenizer):
        super().__init__(hf)
        symbols = byte_symbols()
        self.byte_ids = np.array([hf.token_to_id(s) for s in symbols], dtype=np.int32)
        if (self.byte_ids < 0).any() or None in self.byte_ids.tolist():
            raise ValueError("a byte-level BPE vocabulary must hold all 256 bytes")
        value = {symbol: b for b, symbol in enumerate(symbols)}
        self.token_bytes = [b""] * self.vocab_size
        for token, i in hf.get_vocab(with_added_tokens=True).items():
            self.token_bytes[i] = bytes(value[c] for c in token)

    def encode(self, text: str | bytes) -> np.ndarray:
        pieces = NOT_UTF8.split(as_bytes(text).decode("utf-8", errors="surrogateescape"))
        merged = iter(super().encode_batch(pieces[0::2]))  # the valid UTF-8 runs
        ids = []
        for i, piece in enumerate(pieces):
            if i % 2:  # bytes that are not UTF-8: one byte token each
                raw = np.frombuffer(piece.encode("utf-8", errors="surrogateescape"), np.uint8)
                ids.append(self.byte_ids[raw])
            else:
                ids.append(next(merged))
        return np.concatenate(ids).astype(np.int32)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        if any(isinstance(t, bytes) or NOT_UTF8.search(t) for t in texts):
            return [self.encode(t) for t in texts]
        return super().encode_batch(texts)

    def decode_bytes(self, ids: Any) -> bytes:
        ids = as_ids(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"bpe ids must lie in 0..{self.vocab_size - 1}")
        return b"".join(self.token_bytes[i] for i in ids.tolist())

    def decode(self, ids: Any) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

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


def load_tokenizer(folder: str | Path) -> Tokenizer:
    """The tokenizer saved in `folder` (by `Tokenizer.save`)."""
    path = Path(folder) / files.TOKENIZER_SETTINGS
    data = read_json_object(path, "tokenizer settings", ("kind",))
    if data["kind"] not in KINDS:
        raise UserError(
            f"{path}: not an attnlab tokenizer (kind {data['kind']!r}, expected one of "
            f"{', '.join(KINDS)})"
        )
    version = data.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(
            f"{path}: format version {version} was written by a newer attnlab; upgrade attnlab"
        )
    cls = KINDS[data["kind"]]
    if issubclass(cls, HuggingFaceTokenizer):
        path = Path(folder) / files.TOKENIZER
        if not path.is_file():
            raise UserError(f"{path}: missing {data['kind']} tokenizer file")
    try:
        if issubclass(cls, HuggingFaceTokenizer):
            return cls(HFTokenizer.from_file(str(path)))
        return cls.from_state(data)
    except Exception as error:  # a hand-edited or truncated file fails anywhere inside
        raise UserError(f"{path}: corrupt {data['kind']} tokenizer ({error})") from error
