"""Masked-language-model inputs: sequences framed as BERT frames them, and the masking rule.

Devlin et al. 2019, §3.1 and appendix A.1: 15 % of the tokens are chosen for prediction; of
those, 80 % are replaced by `[MASK]`, 10 % by a random token and 10 % are kept as they are, so
the model cannot tell which unmasked tokens it will be asked about. The loss is taken at the
chosen positions only. Special tokens (`[CLS]`, `[SEP]`, padding) are never chosen, and a
random replacement is never a special token.

Each position is chosen independently with probability `rate` (as RoBERTa's and HuggingFace's
dynamic masking do), so a sequence gets new masks every time it is seen (Liu et al. 2019,
§4.1). A sequence that would get none gets one, so every sequence teaches something. With
`whole_word`, each *word* is chosen with probability `rate` and all its tokens with it (the
whole-word masking of BERT's later release): a word of sub-word pieces is no longer guessed
from its own other pieces. The expected share of chosen tokens is `rate` either way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..models.mlm import IGNORE
from .tokenizers import Tokenizer

MASK_SHARE, RANDOM_SHARE = 0.8, 0.1  # of the chosen tokens; the rest are kept unchanged
MASK_TEXT = "[MASK]"  # how a text given to `fill-mask` marks the tokens to guess


class Masking:
    """The masking rule for one tokenizer's ids: `frame` adds `[CLS]` and `[SEP]` around
    windows of text, `__call__` chooses and replaces tokens."""

    def __init__(self, tokenizer: Tokenizer, rate: float = 0.15, whole_word: bool = False):
        missing = [n for n in ("[CLS]", "[SEP]", "[MASK]") if n not in tokenizer.special_tokens]
        if missing:
            raise UserError(
                f"the {tokenizer.kind} tokenizer has no {' '.join(missing)} token; masked "
                "language modelling needs a tokenizer made for it (wordpiece, or bytes with "
                "special tokens)"
            )
        self.tokenizer, self.rate, self.whole_word = tokenizer, rate, whole_word
        self.cls_id = tokenizer.special_tokens["[CLS]"]
        self.sep_id = tokenizer.special_tokens["[SEP]"]
        self.mask_id = tokenizer.special_tokens["[MASK]"]
        special = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        special[list(tokenizer.special_tokens.values())] = True
        self.special = special  # (vocab,) never chosen, never drawn as a replacement
        self.ordinary = torch.nonzero(~special).flatten()  # the ids a random token comes from
        if whole_word:
            tokenizer.continues_word(np.zeros(1, dtype=np.int64))  # refuses a kind without words

    def frame(self, windows: Tensor, real: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(b, n) windows of text -> (b, n + 2) sequences `[CLS]` text `[SEP]`, and which of
        their tokens are real. `real` (b, n) marks the real tokens of windows padded at the
        end (None: all are); `[SEP]` follows the last real one."""
        b, n = windows.shape
        lengths = torch.full((b,), n) if real is None else real.sum(dim=1)
        tokens = torch.cat((torch.full((b, 1), self.cls_id), windows, torch.zeros(b, 1)), dim=1)
        tokens = tokens.long()
        tokens[torch.arange(b), lengths + 1] = self.sep_id
        if real is None:
            return tokens, None
        real = torch.arange(n + 2)[None, :] <= lengths[:, None] + 1  # (b, n + 2)
        return tokens.masked_fill(~real, 0), real

    def encode_marked(self, text: str) -> tuple[Tensor, Tensor]:
        """`[CLS]` text `[SEP]` as ids (t,), each "[MASK]" written in the text becoming the mask
        token, and the positions of those (m,). The text between the marks is encoded piece by
        piece, so a mark always stands for whole tokens."""
        pieces = text.split(MASK_TEXT)
        ids, positions = [self.cls_id], []
        for i, piece in enumerate(pieces):
            if i:
                positions.append(len(ids))
                ids.append(self.mask_id)
            ids.extend(self.tokenizer.encode(piece).tolist())
        return torch.tensor(ids + [self.sep_id]), torch.tensor(positions, dtype=torch.long)

    def choose(self, tokens: Tensor, real: Tensor | None, generator: torch.Generator) -> Tensor:
        """(b, t) bool: the positions to predict."""
        allowed = ~self.special[tokens]
        if real is not None:
            allowed &= real
        draw = torch.rand(tokens.shape, generator=generator)
        if self.whole_word:
            starts = ~torch.from_numpy(self.tokenizer.continues_word(tokens.numpy()))
            word = starts.cumsum(dim=1).clamp(min=1) - 1  # (b, t) index of each token's word
            draw = draw.gather(1, word)  # one draw per word, shared by its tokens
        chosen = (draw < self.rate) & allowed
        # A sequence with nothing chosen gets one allowed position at random.
        empty = ~chosen.any(dim=1) & allowed.any(dim=1)
        if empty.any():
            rows = torch.nonzero(empty).flatten()
            pick = torch.rand(tokens.shape, generator=generator).masked_fill(~allowed, -1)
            chosen[rows, pick.argmax(dim=1)[rows]] = True
        return chosen

    def __call__(
        self, tokens: Tensor, real: Tensor | None, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """(inputs, targets) for a (b, t) batch: inputs with the chosen tokens replaced,
        targets holding the original token at the chosen positions and `IGNORE` elsewhere.
        `real` (b, t) marks real tokens (None: all are)."""
        chosen = self.choose(tokens, real, generator)
        decide = torch.rand(tokens.shape, generator=generator)
        pick = torch.randint(0, len(self.ordinary), tokens.shape, generator=generator)
        inputs = torch.where(chosen & (decide < MASK_SHARE), self.mask_id, tokens)
        randomly = chosen & (decide >= MASK_SHARE) & (decide < MASK_SHARE + RANDOM_SHARE)
        inputs = torch.where(randomly, self.ordinary[pick], inputs)
        return inputs, torch.where(chosen, tokens, IGNORE)


def text_windows(tokens: np.ndarray, length: int) -> tuple[Tensor, Tensor]:
    """The whole of `tokens` as consecutive windows of `length` (the last may be shorter):
    (n, length) ids, padded with 0, and the (n, length) mask of real ones. Nothing is left
    out, so a score over them covers every token."""
    n = max(1, -(-len(tokens) // length))
    ids = np.zeros(n * length, dtype=np.int64)
    ids[: len(tokens)] = tokens
    real = np.arange(n * length) < len(tokens)
    return torch.from_numpy(ids.reshape(n, length)), torch.from_numpy(real.reshape(n, length))
