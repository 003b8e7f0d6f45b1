"""Primer's causal depthwise convolution, forward and backward: attnlab's multiply-add form
(`CausalDepthwiseConv`) against PyTorch's grouped `F.conv1d` over a (b, c, t) copy of the same
input, on one layer's q, k and v of the tiny preset's training batch (16 × 128 × 384).

Rounds interleave the two, the order turned every round; the table gives each one's median
and fastest time a call, and the median of the per-round ratios. Freed buffers are kept, as
in training (`attnlab.device.keep_freed_memory`).

    python -m benchmarks.dconv_speed [--threads 1] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.attention.dconv import CausalDepthwiseConv
from attnlab.device import keep_freed_memory


def grouped_conv1d(conv: CausalDepthwiseConv, x: Tensor) -> Tensor:
    b, t, c = x.shape
    padded = torch.cat((x.new_zeros(b, conv.kernel - 1, c), x), dim=1).transpose(1, 2)
    return F.conv1d(padded, conv.taps.view(c, 1, conv.kernel), groups=c).transpose(1, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20, help="calls timed together in a round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as training does: no page faults on the buffers each call frees
    conv = CausalDepthwiseConv(384, 3)
    with torch.no_grad():
        conv.taps.normal_()
    x = torch.randn(16, 128, 384, requires_grad=True)
    grad = torch.randn(16, 128, 384)
    forms = {"multiply-add (attnlab)": conv, "F.conv1d": lambda x: grouped_conv1d(conv, x)}
    torch.testing.assert_close(forms["F.conv1d"](x), conv(x))

    def seconds(form) -> float:
        start = time.perf_counter()
        for _ in range(args.calls):
            form(x).backward(grad)
            x.grad = conv.taps.grad = None
        return (time.perf_counter() - start) / args.calls

    for form in forms.values():  # warm up
        seconds(form)
    times: dict[str, list[float]] = {name: [] for name in forms}
    for round_ in range(args.rounds):
        for name in sorted(forms, reverse=round_ % 2 == 1):
            times[name].append(seconds(forms[name]))
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values) * 1e3:.2f} ms, "
              f"fastest {min(values) * 1e3:.2f} ms")  # fmt: skip
    ratios = [slow / ours for ours, slow in zip(*times.values(), strict=True)]
    print(f"F.conv1d / multiply-add, median of the rounds: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
