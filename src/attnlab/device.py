"""Where to run and at which precision: CUDA, then Apple's MPS, then the CPU, unless told
otherwise; bf16 autocast on a GPU that has it, fp32 elsewhere (a CPU without bf16 units runs
bf16 many times slower than fp32)."""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import AbstractContextManager, nullcontext

import torch

from .errors import UserError

DEVICE_TYPES = ("cpu", "cuda", "mps")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Let glibc's allocator keep freed blocks (up to its 32 MB ceiling) for reuse rather than
    hand them back to the system. A training step frees and asks again for the same activation
    buffers every step, and each fresh mapping costs a page fault per 4 KB page: 7–11 % of a CPU
    training run's time went to the kernel before this (benchmarks/RESULTS.md). Returns whether
    the allocator took the settings (False off Linux/glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20) and mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def device_complaint(name: str) -> str | None:
    """Why `name` is not a device attnlab can run on, or None."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return f"{name!r} is not a device name (try auto, cpu, cuda, cuda:1, mps)"
    if device.type not in DEVICE_TYPES:
        return f"attnlab runs on {', '.join(DEVICE_TYPES)}, not {device.type!r}"
    return None


def pick_device(name: str | None = None) -> torch.device:
    """`None` or "auto" picks the best available device; anything else is taken as given."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    complaint = device_complaint(name)
    if complaint:
        raise UserError(f"--device: {complaint}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} GPUs")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {name}: MPS is not available on this machine")
    return device


def memory_bytes(device: torch.device) -> int:
    """The memory a model on `device` can use: the GPU's, or the machine's RAM."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device.index or 0).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 60  # unknown: assume it fits


def resolve_precision(device: torch.device, precision: str) -> str:
    """`auto` made concrete: bf16 on a GPU that supports it, fp32 everywhere else."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context for a precision setting; fp32 means none."""
    precision = resolve_precision(device, precision)
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling, needed by fp16 only (its narrow range underflows small gradients)."""
    enabled = resolve_precision(device, precision) == "fp16"
    return torch.amp.GradScaler(device.type, enabled=enabled)
