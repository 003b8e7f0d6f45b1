"""Our Nyström attention next to the PyPI package `nystrom-attention` (lucidrains), on the
same weights and inputs.

    pip install nystrom-attention --no-deps   # and einops
    python benchmarks/nystrom_peer.py

Both layers get the same q/k/v projection, output projection and value convolution, so the
only differences are in the cores. For each case it prints the relative difference between
the two outputs and each one's relative error against exact softmax attention (float64,
with the same convolution residual), then forward+backward times. Writes
benchmarks/results/nystrom_peer.json.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from nystrom_attention import NystromAttention as PeerNystrom
from torch import Tensor

from attnlab import ModelConfig
from attnlab.attention import MultiHeadAttention
from attnlab.bench import best_time

HEADS, HEAD_DIM = 8, 64
WIDTH = HEADS * HEAD_DIM
RESULTS = Path(__file__).parent / "results"


def twin_layers(landmarks: int) -> tuple[MultiHeadAttention, PeerNystrom]:
    cfg = ModelConfig(
        width=WIDTH,
        heads=HEADS,
        position="none",
        attention="nystrom",
        options={"nystrom": {"landmarks": landmarks}},
        bias=False,
    )
    ours = MultiHeadAttention(cfg)
    peer = PeerNystrom(dim=WIDTH, dim_head=HEAD_DIM, heads=HEADS, num_landmarks=landmarks)
    with torch.no_grad():
        # Both lay the fused projection out as (q | k | v), each head-major.
        peer.to_qkv.weight.copy_(ours.to_qkv.weight)
        peer.to_out[0].weight.copy_(ours.unify_heads.weight)
        peer.to_out[0].bias.zero_()
        peer.res_conv.weight.copy_(ours.core.conv.weight)
    return ours.eval(), peer.eval()


def exact(layer: MultiHeadAttention, x: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax attention plus the same value convolution, in float64."""
    b, n, _ = x.shape
    qkv = x.double() @ layer.to_qkv.weight.double().T
    q, k, v = qkv.view(b, n, 3, HEADS, HEAD_DIM).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-2, -1) / math.sqrt(HEAD_DIM)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        v = v * mask[:, None, :, None]
    out = scores.softmax(-1) @ v
    out = out + F.conv2d(v, layer.core.conv.weight.double(), padding="same", groups=HEADS)
    return out.transpose(1, 2).reshape(b, n, WIDTH) @ layer.unify_heads.weight.double().T


def relative(a: Tensor, b: Tensor, mask: Tensor | None) -> float:
    if mask is not None:  # only real positions have a meaning
        a, b = a[mask], b[mask]
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def fwd_bwd_ms(layer: torch.nn.Module, x: Tensor, grad: Tensor) -> float:
    weights = [x, *layer.parameters()]
    return best_time(lambda: torch.autograd.grad(layer(x), weights, grad), 3, x.device)


def accuracy_cases() -> list[dict]:
    rows = []
    for n, landmarks, padded in [(1024, 64, False), (1000, 64, False), (1024, 64, True)]:
        torch.manual_seed(0)
        ours, peer = twin_layers(landmarks)
        x = torch.randn(2, n, WIDTH)
        mask = None
        if padded:  # the second sequence is 700 tokens long
            mask = torch.ones(2, n, dtype=torch.bool)
            mask[1, 700:] = False
        with torch.no_grad():
            a, b = ours(x, mask=mask), peer(x, mask=mask)
            reference = exact(ours, x, mask)
        rows.append(
            {
                "n": n,
                "landmarks": landmarks,
                "padded": padded,
                "ours_vs_peer": relative(a, b, mask),
                "ours_vs_exact": relative(a, reference, mask),
                "peer_vs_exact": relative(b, reference, mask),
            }
        )
        print(rows[-1], flush=True)
    return rows


def speed_cases() -> list[dict]:
    rows = []
    for n, landmarks in [(4096, 256), (8192, 64), (8192, 256)]:
        torch.manual_seed(0)
        ours, peer = twin_layers(landmarks)
        x = torch.randn(1, n, WIDTH, requires_grad=True)
        grad = torch.randn(1, n, WIDTH)
        times = {"ours_ms": fwd_bwd_ms(ours, x, grad), "peer_ms": fwd_bwd_ms(peer, x, grad)}
        rows.append({"n": n, "landmarks": landmarks, **times})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    report = {"accuracy": accuracy_cases(), "speed": speed_cases()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nystrom_peer.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
