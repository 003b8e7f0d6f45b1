"""Choosing where to run: CUDA, then Apple's MPS, then the CPU, unless told otherwise."""

from __future__ import annotations

import torch

from .errors import UserError


def pick_device(name: str | None = None) -> torch.device:
    """`None` or "auto" picks the best available device; anything else is taken as given."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"device {name!r} is not a device name (try cpu, cuda, mps)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} was asked for but MPS is not available")
    return device
