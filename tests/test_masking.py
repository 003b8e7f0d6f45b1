"""The masking rule of BERT (Devlin et al. 2019, §3.1) and the special tokens it relies on."""

import math

import numpy as np
import pytest
import torch

from attnlab.data.masking import Masking, text_windows
from attnlab.data.tokenizers import MLM_SPECIALS, ByteTokenizer, load_tokenizer, train_tokenizer
from attnlab.errors import UserError
from attnlab.models.mlm import IGNORE

BYTES = ByteTokenizer(MLM_SPECIALS)
TEXT = ["the quick brown fox jumps over the lazy dog, unbelievably quickly"] * 20


def wordpiece():
    return train_tokenizer("wordpiece", TEXT, 40)


def within(share, expected, n, sigmas=5):
    """`share` of n draws is within `sigmas` standard errors of the `expected` probability."""
    return abs(share - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


def test_chosen_tokens_are_15_percent_and_split_80_10_10():
    tokens = torch.randint(0, 256, (400, 250))  # 100,000 ordinary tokens
    masking = Masking(BYTES)
    inputs, targets = masking(tokens, None, torch.Generator().manual_seed(0))
    chosen = targets != IGNORE
    n = chosen.sum().item()
    assert within(n / tokens.numel(), 0.15, tokens.numel())
    masked = (inputs == masking.mask_id) & chosen
    changed = (inputs != tokens) & ~masked & chosen
    kept = (inputs == tokens) & chosen
    ordinary = len(masking.ordinary)
    assert within(masked.sum().item() / n, 0.8, n)
    assert within(changed.sum().item() / n, 0.1 * (1 - 1 / ordinary), n)  # a draw may repeat
    assert within(kept.sum().item() / n, 0.1 + 0.1 / ordinary, n)
    assert torch.equal(inputs[~chosen], tokens[~chosen]), "an unchosen token was changed"


def test_targets_hold_the_original_token_at_chosen_positions_only():
    tokens = torch.randint(0, 256, (8, 64))
    inputs, targets = Masking(BYTES)(tokens, None, torch.Generator().manual_seed(1))
    chosen = targets != IGNORE
    assert torch.equal(targets[chosen], tokens[chosen])
    assert (inputs[chosen] != tokens[chosen]).any()


def test_special_tokens_and_padding_are_never_chosen_or_drawn():
    masking = Masking(wordpiece(), rate=0.5)
    windows = torch.randint(0, masking.tokenizer.vocab_size, (64, 30))
    real = torch.arange(30)[None, :] < torch.randint(1, 31, (64, 1))
    sequences, real = masking.frame(windows, real)
    generator = torch.Generator().manual_seed(2)
    for _ in range(20):
        inputs, targets = masking(sequences, real, generator)
        chosen = targets != IGNORE
        assert not (chosen & masking.special[sequences]).any()
        assert not (chosen & ~real).any()
        replaced = chosen & (inputs != sequences) & (inputs != masking.mask_id)
        assert replaced.any() and not masking.special[inputs[replaced]].any()


def test_frame_puts_cls_first_and_sep_after_the_last_real_token():
    masking = Masking(BYTES)
    windows = torch.tensor([[65, 66, 67], [68, 0, 0]])
    sequences, real = masking.frame(windows, torch.tensor([[1, 1, 1], [1, 0, 0]]).bool())
    cls, sep = masking.cls_id, masking.sep_id
    assert sequences.tolist() == [[cls, 65, 66, 67, sep], [cls, 68, sep, 0, 0]]
    assert real.tolist() == [[True] * 5, [True, True, True, False, False]]


def test_masks_are_new_each_time_and_repeat_with_the_seed():
    tokens = torch.randint(0, 256, (4, 128))
    masking = Masking(BYTES)
    generator = torch.Generator().manual_seed(3)
    first, second = (masking(tokens, None, generator)[1] for _ in range(2))
    assert not torch.equal(first, second)
    again = masking(tokens, None, torch.Generator().manual_seed(3))[1]
    assert torch.equal(first, again)


def test_a_sequence_with_nothing_chosen_gets_one_position():
    tokens = torch.randint(0, 256, (50, 6))
    targets = Masking(BYTES, rate=1e-6)(tokens, None, torch.Generator().manual_seed(4))[1]
    assert ((targets != IGNORE).sum(dim=1) == 1).all()


def test_whole_word_masking_chooses_all_pieces_of_a_word_together():
    tok = wordpiece()
    ids = torch.from_numpy(tok.encode(" ".join(TEXT)).astype(np.int64))[None].repeat(200, 1)
    continues = torch.from_numpy(tok.continues_word(ids[0].numpy()))
    assert continues.any(), "the text should hold words of several pieces"
    targets = Masking(tok, whole_word=True)(ids, None, torch.Generator().manual_seed(5))[1]
    chosen = targets != IGNORE
    inside = continues.nonzero().flatten()
    assert torch.equal(chosen[:, inside], chosen[:, inside - 1]), "a word was split"
    assert within(chosen.float().mean().item(), 0.15, ids.shape[0] * (~continues).sum().item())


def test_bytes_continue_a_word_within_letters_digits_and_multibyte_characters():
    tok = ByteTokenizer()
    ids = tok.encode("ab_1 c-é")
    assert tok.continues_word(ids).tolist() == [False, True, True, True, False, False, False,
                                                False, True]  # fmt: skip


def test_whole_word_masking_needs_a_tokenizer_that_marks_words():
    chars = train_tokenizer("chars", ["abc"])
    chars.special_tokens = {"[CLS]": 0, "[SEP]": 1, "[MASK]": 1}
    with pytest.raises(UserError, match="does not mark words"):
        Masking(chars, whole_word=True)


def test_a_tokenizer_without_mask_token_is_refused():
    with pytest.raises(UserError, match=r"no \[CLS\] \[SEP\] \[MASK\]"):
        Masking(ByteTokenizer())


def test_wordpiece_reserves_berts_special_tokens_and_reads_them_as_text():
    tok = wordpiece()
    assert tok.special_tokens == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    assert 4 not in tok.encode("the [MASK] dog").tolist()
    masking = Masking(tok)
    ids, positions = masking.encode_marked("the [MASK] dog [MASK]")
    assert ids[positions].tolist() == [4, 4] and ids[0] == 2 and ids[-1] == 3
    assert tok.decode(ids[1:-1]).split() == ["the", "[MASK]", "dog", "[MASK]"]


def test_bytes_with_special_tokens_save_load_and_decode_their_names(tmp_path):
    BYTES.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert loaded.vocab_size == 259 and loaded.special_tokens == BYTES.special_tokens
    assert loaded.decode([256, 104, 105, 258, 257]) == "[CLS]hi[MASK][SEP]"
    assert ByteTokenizer().vocab_size == 256 and ByteTokenizer().state() == {}


def test_text_windows_cover_every_token_once():
    tokens = np.arange(1, 12)
    windows, real = text_windows(tokens, 4)
    assert windows.shape == (3, 4)
    assert windows[real].tolist() == tokens.tolist()
