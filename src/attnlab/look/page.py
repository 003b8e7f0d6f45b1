"""The attention page: one self-contained HTML file (inline CSS and script, no network), so it
opens offline and travels as an e-mail attachment.

The maps travel as bytes: each weight w in [0, 1] as round(255·√w), so small weights keep
their shades (a weight of 10⁻⁴ is still a level of its own); a signed matrix (a Nyström
approximation, a difference) as 128 + round(127·sign(w)·√(|w|/scale)). Base64 of one byte per
weight keeps a 12-layer × 12-head page on 128 tokens near 3.5 MB.
"""

from __future__ import annotations

import base64
import json
from importlib.resources import files
from typing import Any

import torch
from torch import Tensor

from .maps import AttentionMaps

TEMPLATE = "page.html"
PLACEHOLDER = "{{DATA}}"


def encode(x: Tensor) -> dict[str, Any]:
    """A tensor of weights as one byte per entry (see the module's docstring), flattened."""
    x = x.detach().float().cpu()
    if x.numel() and x.min() >= 0 and x.max() <= 1 + 1e-6:
        codes = (255 * x.clamp(0, 1).sqrt()).round()
        encoded: dict[str, Any] = {"kind": "unit"}
    else:
        scale = x.abs().max().item() or 1.0
        codes = 128 + (127 * x.sign() * (x.abs() / scale).sqrt()).round()
        encoded = {"kind": "signed", "scale": scale}
    data = codes.to(torch.uint8).numpy().tobytes()
    return {**encoded, "data": base64.b64encode(data).decode("ascii")}


def decode(encoded: dict[str, Any]) -> Tensor:
    """The inverse of `encode`, to the precision one byte keeps (flattened)."""
    codes = torch.frombuffer(bytearray(base64.b64decode(encoded["data"])), dtype=torch.uint8)
    codes = codes.double()
    if encoded["kind"] == "unit":
        return (codes / 255) ** 2
    signed = (codes - 128) / 127
    return signed.sign() * signed**2 * encoded["scale"]


def page_data(
    maps: AttentionMaps,
    labels: list[dict[str, str]],
    *,
    title: str,
    subtitle: str,
    prediction: list[tuple[str, float]] | None = None,
    notes: list[str] = (),
    key_labels: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, for the first sequence of the batch. `labels` are the
    tokens of the text (`tokens.token_labels`); prefix positions are added here. Keys that
    are another sequence's tokens (cross-attention) come as `key_labels`."""
    t, s = maps.weights[0].shape[2:]
    prefix = [{"text": "[CLS]", "hint": "the classifier's own vector"}] * maps.prefix
    start = maps.first_query - maps.memory
    keys = prefix + labels[start:] if key_labels is None else key_labels
    queries = prefix + labels[maps.first_query :]
    if len(queries) != t or len(keys) != s:
        raise ValueError(f"{len(queries)} × {len(keys)} tokens for maps of {t} × {s}")
    first = [w[0] for w in maps.weights]  # (h, t, s) each
    data: dict[str, Any] = {
        "title": title,
        "subtitle": subtitle,
        "core": maps.core,
        "names": maps.names,
        "layers": maps.layers,
        "heads": maps.heads,
        "t": t,
        "s": s,
        "memory": maps.memory,
        "prefix": maps.prefix,
        "tokens": labels,
        "first_key": start,
        "queries": queries,
        "keys": keys,
        "maps": {"heads": encode(torch.stack(first)), "average": encode(maps.head_average()[:, 0])},
        "notes": list(notes),
    }
    rollout = maps.rollout()
    if rollout is not None:
        data["maps"]["rollout"] = encode(rollout[:, 0])
    if maps.no_rollout:
        data["no_rollout"] = maps.no_rollout
    if maps.exact is not None:
        exact = torch.stack([e[0] for e in maps.exact])
        data["maps"]["exact"] = encode(exact)
        data["maps"]["difference"] = encode(torch.stack(first) - exact)
    if maps.seen is not None and not maps.seen[0].all():  # only where some key is out of sight
        seen = maps.seen[0, 0].expand(t, s).to(torch.uint8).cpu().numpy().tobytes()
        data["seen"] = base64.b64encode(seen).decode("ascii")
    if maps.ponder is not None:
        data["ponder"] = maps.ponder[0].tolist()
    if maps.attribution is not None:
        data["attribution"] = maps.attribution[0].tolist()
    if prediction is not None:
        data["prediction"] = [[label, round(p, 4)] for label, p in prediction]
    return data


def render(data: dict[str, Any]) -> str:
    """The page's HTML with `data` inside it."""
    template = files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")
    # Inside a <script> element only "</" could end it early; JSON allows "<\/" for it.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return template.replace(PLACEHOLDER, payload)
