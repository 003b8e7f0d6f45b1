"""Bits per byte: how well a language model compresses a text.

Every token of the text but the first is predicted exactly once. A model with a fixed
context sees the text through strided windows (Press et al. 2021 call this "sliding window
evaluation"): windows of `context` tokens, each scoring only the predictions not scored
before, so each one has at least half a context of preceding text. A recurrent model
(Transformer-XL) instead reads the text segment after segment, carrying its memory.

The total cross-entropy in bits is divided by the number of bytes those predicted tokens
cover, so byte-level and BPE models are compared on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.windows import gather_windows
from .models.stack import reads_segments
from .progress import progress


def strided_windows(n: int, context: int) -> Iterator[tuple[int, int, int]]:
    """(start, length, first) per window over a text of n tokens: the window's inputs are
    tokens[start : start+length], and it scores its predictions from offset `first` on."""
    keep = context - context // 2  # tokens of guaranteed left context per scored prediction
    done = 1  # the first token has no prediction
    while done < n:
        start = min(max(0, done - keep), max(0, n - 1 - context))
        end = min(start + context, n - 1)  # index of the last target
        yield start, end - start, done - start - 1
        done = end + 1


def token_nll_bits(model: nn.Module, batch: Tensor, state=None, first: int = 0) -> Tensor:
    """Bits of each next-token prediction in a (b, t + 1) batch of token runs, from offset
    `first` on: (b, t - first). The output layer computes only the logits scored."""
    targets = batch[:, 1 + first :]
    logits = model(batch[:, :-1], state, last=targets.shape[1])
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
    return nll / math.log(2)


@torch.no_grad()
def windowed_nll_bits(
    model: nn.Module,
    tokens: np.ndarray,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    show_progress: bool = True,
) -> tuple[float, int]:
    """(total bits, predictions scored) of `model` over `tokens`, in strided windows. All
    windows have the same length (a text shorter than one window has a single window)."""
    windows = list(strided_windows(len(tokens), model.cfg.context))
    total, count = 0.0, 0
    starts = range(0, len(windows), batch_size)
    shown = len(starts) if show_progress else 0
    for i in progress(starts, shown, f"scoring {len(tokens):,} tokens"):
        starts, lengths, firsts = (
            torch.tensor(column) for column in zip(*windows[i : i + batch_size], strict=True)
        )
        batch = gather_windows(tokens, starts, int(lengths[0]) + 1).to(device)
        first = int(firsts.min())
        bits = token_nll_bits(model, batch, first=first)  # (b, length - first)
        offsets = torch.arange(first, first + bits.shape[1], device=device)
        keep = offsets[None, :] >= firsts.to(device)[:, None]
        total += bits[keep].sum().item()
        count += int(keep.sum())
    return total, count


@torch.no_grad()
def streamed_nll_bits(
    model: nn.Module,
    tokens: np.ndarray,
    streams: int = 1,
    device: torch.device | str = "cpu",
    memory: int | None = None,
    show_progress: bool = True,
) -> tuple[float, int]:
    """(total bits, predictions scored) of a recurrent model reading `tokens` as `streams`
    contiguous streams, `context` tokens at a time, its state carried between segments."""
    segment = model.cfg.context
    length = (len(tokens) - 1) // streams
    starts = torch.arange(streams) * length
    state = model.new_state()
    if memory is not None:
        state.size = memory  # a longer memory than in training (Dai et al. 2019, §4)
    total, count = 0.0, 0
    offsets = range(0, length, segment)
    shown = len(offsets) if show_progress else 0
    for offset in progress(offsets, shown, f"scoring {len(tokens):,} tokens"):
        size = min(segment, length - offset)
        batch = gather_windows(tokens, starts + offset, size + 1).to(device)
        bits = token_nll_bits(model, batch, state)
        total += bits.sum().item()
        count += bits.numel()
    return total, count


def bits_per_byte(
    model: nn.Module,
    tokens: np.ndarray,
    bytes_per_token: float = 1.0,
    **options,
) -> dict[str, float]:
    """Bits per byte of `tokens` and the bytes scored. For BPE, `bytes_per_token` is the
    text's bytes over its tokens, so the result is still per byte of text."""
    was_training = model.training
    model.eval()
    memory = options.pop("memory", None)
    if reads_segments(model.cfg.model):
        options["streams"] = options.pop("batch_size", 1)
        bits, count = streamed_nll_bits(model, tokens, memory=memory, **options)
    else:
        bits, count = windowed_nll_bits(model, tokens, **options)
    model.train(was_training)
    n_bytes = count * bytes_per_token
    return {"bits_per_byte": bits / n_bytes, "bytes": round(n_bytes), "tokens": count}


def compressor_bits_per_byte(data: bytes) -> dict[str, float]:
    """Bits per byte of the standard compressors at their strongest settings, for comparison."""
    import bz2
    import gzip
    import lzma

    sizes = {
        "gzip -9": len(gzip.compress(data, 9)),
        "bzip2 -9": len(bz2.compress(data, 9)),
        "xz -9": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
    }
    return {name: 8 * size / len(data) for name, size in sizes.items()}
