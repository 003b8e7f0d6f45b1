"""Attention: the cores (one file each, registered by name) and the multi-head layer around
them. `attnlab list` shows every registered core with what it provides."""

from .base import Core, allowed_mask, softmax_scale
from .cache import KVCache
from .layer import MultiHeadAttention

__all__ = ["Core", "KVCache", "MultiHeadAttention", "allowed_mask", "softmax_scale"]
