"""Attention mechanisms behind one interface; `build_attention(cfg)` picks the one asked for."""

from torch import nn

from ..config import ModelConfig
from . import dense, nystrom, sparse  # noqa: F401  (register the cores)
from .base import CORES, MultiHeadAttention, allowed_mask, register_core
from .cache import KVCache
from .dense import BasicSelfAttention, DenseAttention
from .relative import LayerMemory, RelativeAttention


def build_attention(cfg: ModelConfig) -> nn.Module:
    """The self-attention layer a block should hold for this configuration."""
    if cfg.position == "relative":
        return RelativeAttention(cfg)
    if cfg.attention == "basic":
        return BasicSelfAttention(cfg)
    if cfg.attention not in CORES:
        raise ValueError(f"attention {cfg.attention!r} is not available")
    return MultiHeadAttention(cfg)


__all__ = [
    "BasicSelfAttention",
    "DenseAttention",
    "KVCache",
    "LayerMemory",
    "MultiHeadAttention",
    "RelativeAttention",
    "allowed_mask",
    "build_attention",
    "register_core",
]
