"""Tokens as the tokenizer split the text, each shown readably.

A token is a run of bytes (one byte, a byte-level BPE piece) or a piece of text (a character, a
word, a WordPiece). Bytes are shown as the text they spell where they are whole UTF-8, and as
⟨hex⟩ where they are not (a character split over several byte tokens); white space is made
visible, so a token that is a space or starts with one can be seen to.
"""

from __future__ import annotations

from functools import cache

from ..data.tokenizers import ByteTokenizer, HuggingFaceTokenizer, Tokenizer

VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


@cache
def byte_level_decoder() -> dict[str, int]:
    """The inverse of the byte-level alphabet (GPT-2; Radford et al. 2019): each of the 256
    bytes is written as one printable character, bytes that already are one as themselves."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]  # fmt: skip
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def is_byte_level(tokenizer: HuggingFaceTokenizer) -> bool:
    decoder = tokenizer.hf.decoder
    return decoder is not None and type(decoder).__name__ == "ByteLevel"


def piece(tokenizer: Tokenizer, token: int) -> bytes | str:
    """The bytes (byte-level kinds) or the text of one token."""
    if isinstance(tokenizer, ByteTokenizer):
        return bytes([token])
    if isinstance(tokenizer, HuggingFaceTokenizer):
        text = tokenizer.hf.id_to_token(token)
        if text is None:
            return f"⟨id {token}⟩"
        if is_byte_level(tokenizer):
            table = byte_level_decoder()
            if all(c in table for c in text):
                return bytes(table[c] for c in text)
        return text
    return tokenizer.decode([token])


def readable(chunk: bytes | str) -> str:
    """A token's bytes or text as something one can read: whole UTF-8 as text, other bytes as
    ⟨hex⟩, white space and control characters made visible."""
    if isinstance(chunk, bytes):
        parts, rest = [], chunk
        while rest:
            try:
                parts.append(rest.decode("utf-8"))
                break
            except UnicodeDecodeError as error:
                parts.append(rest[: error.start].decode("utf-8"))
                bad = rest[error.start : error.end]
                parts.append("".join(f"⟨{b:02x}⟩" for b in bad))
                rest = rest[error.end :]
        chunk = "".join(parts)
    return "".join(
        VISIBLE.get(c, f"⟨{ord(c):02x}⟩" if ord(c) < 32 or ord(c) == 127 else c) for c in chunk
    )


def token_labels(
    tokenizer: Tokenizer, ids: list[int], special: dict[int, str] | None = None
) -> list[dict[str, str]]:
    """For each token, its readable `text` and a `hint`: its id and, for bytes, their hex.
    `special` names the ids the model adds beyond the tokenizer's (an encoder-decoder's BOS
    and EOS)."""
    labels = []
    for token in ids:
        if special and token in special:
            labels.append({"text": special[token], "hint": f"id {token}"})
            continue
        chunk = piece(tokenizer, token)
        hint = f"id {token}"
        if isinstance(chunk, bytes):
            hint += ", bytes " + " ".join(f"{b:02x}" for b in chunk)
        labels.append({"text": readable(chunk) or "∅", "hint": hint})
    return labels
