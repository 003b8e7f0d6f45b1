"""Generation's decoding step, fused by hand: the fast path of `LanguageModel.stream`.

With a key/value cache, each new token is one row through every block. The model's forward
computes that row as it computes a batch of whole windows, and pays at every token for its
generality: a module call for every layer (some thirteen a block), three-dimensional reshapes
around every linear map, heads split and merged through permuted views. At one row those costs
are as large as the arithmetic, whose floor is reading every weight once. `DecodeStep` looks
every block's tensors up once (a module attribute is a dictionary walk each time it is read),
calls modules' `forward` directly (a module call first looks for hooks), and computes the same
maps in the same order on (b, width) rows. What carries meaning (the embedding, the positions,
Primer's convolution, the value residual, the cache, the core's `attend`, the activation) it
calls as the forward does, so both give the same numbers (tests compare them).

Each linear map multiplies by a transposed copy of its weight, (in, out) rather than
nn.Linear's (out, in): MKL's matrix-vector product streams that layout 1.15x faster on a CPU
(benchmarks/gemv_layout.py). The copies live as long as the step, one generation.

The step takes the plain transformer stack with cache-keeping self-attention, whatever its
positions, norms, activation, biases or value residual; anything else (Transformer-XL's memory,
a recurrent core, the universal transformer) goes through the forward as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention.base import Core
from ..attention.cache import KVCache
from ..attention.dconv import ConvState
from ..attention.layer import MultiHeadAttention, ValueResidual
from ..block import Block
from ..positions.rope import RotaryPositions
from .stack import LayerStates, Transformer

Norm = tuple[tuple[int, ...], Tensor | None, Tensor | None, float]
Linear = tuple[Tensor, Tensor | None]  # the weight transposed, (in, out), and the bias


def norm_of(norm: nn.LayerNorm) -> Norm:
    return norm.normalized_shape, norm.weight, norm.bias, norm.eps


def linear_of(layer: nn.Linear) -> Linear:
    return layer.weight.detach().t().contiguous(), layer.bias


def linear(x: Tensor, layer: Linear) -> Tensor:
    """layer(x) for x (b, in)."""
    weight, bias = layer
    return x @ weight if bias is None else torch.addmm(bias, x, weight)


@dataclass(slots=True)
class BlockStep:
    """What one block's step reads, looked up once."""

    pre_norm: bool
    norm1: Norm
    norm2: Norm
    qkv: Linear
    unify: Linear
    expand: Linear
    contract: Linear
    activation: Callable[[Tensor], Tensor]
    heads: int
    head_dim: int
    qk_norm: bool
    conv: nn.Module | None
    position: Any  # for its score bias and queries_keys; None where `rotary` stands for it
    rotary: Callable[[Tensor, int], Tensor] | None
    attend: Callable[..., Tensor]

    @classmethod
    def of(cls, block: Block) -> BlockStep:
        layer, (expand, activation, contract) = block.attention, block.feed_forward
        rotary = layer.position.rotary if isinstance(layer.position, RotaryPositions) else None
        return cls(
            block.pre_norm, norm_of(block.norm1), norm_of(block.norm2),
            linear_of(layer.to_qkv), linear_of(layer.unify_heads),
            linear_of(expand), linear_of(contract), activation.forward,
            layer.heads, layer.head_dim, layer.qk_norm, layer.qkv_conv,
            None if rotary else layer.position, rotary, layer.core.attend,
        )  # fmt: skip

    def __call__(self, x: Tensor, state: Any, values: ValueResidual | None) -> Tensor:
        if self.pre_norm:  # x + attention(norm1(x)), then x + ff(norm2(x))
            x = x + self.attention(torch.layer_norm(x, *self.norm1), state, values)
            return x + self.feed_forward(torch.layer_norm(x, *self.norm2))
        x = torch.layer_norm(x + self.attention(x, state, values), *self.norm1)
        return torch.layer_norm(x + self.feed_forward(x), *self.norm2)

    def attention(self, x: Tensor, state: Any, values: ValueResidual | None) -> Tensor:
        """The attention layer's `layer(x[:, None], causal=True, state=state)[:, 0]`."""
        b, h, d = x.shape[0], self.heads, self.head_dim
        qkv = linear(x, self.qkv)  # (b, 3·h·d)
        if self.conv is not None:  # the state is a ConvState
            qkv = state.convolve(self.conv, qkv[:, None])[:, 0]
            state = state.inner
        q_k = qkv[:, : 2 * h * d].view(b, 2 * h, 1, d)  # queries and keys, at one position
        v = qkv[:, 2 * h * d :].view(b, h, 1, d)
        if values is not None:
            v = values.mix(v)
        if self.qk_norm:  # both at once: one call instead of two
            q_k = F.rms_norm(q_k, (d,))
        start, bias = state.length, None
        if self.rotary is not None:  # rotary positions turn queries and keys alike
            q_k = self.rotary(q_k, start)
        q, k = q_k.view(b, 2, h, 1, d).unbind(1)
        if self.position is not None:
            bias = self.position.bias(q, 1, start + 1)
            q, k = self.position.queries_keys(q, k, start)
        k, v = state.append(k, v)  # every key so far, (b, h, length, d)
        out = self.attend(q, k, v, causal=True, bias=bias)  # (b, h, 1, d)
        return linear(out.reshape(b, h * d), self.unify)

    def feed_forward(self, x: Tensor) -> Tensor:
        return linear(self.activation(linear(x, self.expand)), self.contract)


class DecodeStep:
    """tokens (b, 1) after `state.length` earlier ones -> next-token logits (b, vocab_size),
    what `model(tokens, state, last=1)[:, -1]` gives. Call it under `torch.no_grad()`; build it
    again after the weights change."""

    def __init__(self, model: nn.Module):
        self.embed = model.embedding.forward
        self.blocks = [BlockStep.of(block) for block in model.stack.blocks]
        stack = model.stack
        self.value_weights = (stack.value_keep, stack.value_first) if stack.value_residual else None
        self.norm = None if isinstance(model.norm, nn.Identity) else norm_of(model.norm)
        self.head = linear_of(model.head)
        self.logit_cap = model.cfg.logit_cap

    @staticmethod
    def fits(model: nn.Module, state: object) -> bool:
        """Whether the model and its incremental state are of the kind this step computes."""
        if type(model.stack) is not Transformer or not isinstance(state, LayerStates):
            return False
        for block, layer_state in zip(model.stack.blocks, state, strict=True):
            attention = block.attention
            if type(block) is not Block or type(attention) is not MultiHeadAttention:
                return False
            if not hasattr(attention, "to_qkv") or type(attention.core).forward is not Core.forward:
                return False  # separate key/value maps, or a core whose state is no cache
            inner = layer_state.inner if isinstance(layer_state, ConvState) else layer_state
            if type(inner) is not KVCache:
                return False
        return True

    def __call__(self, tokens: Tensor, state: LayerStates) -> Tensor:
        x = self.embed(tokens, state.length)[:, 0]  # (b, width)
        values = ValueResidual(*self.value_weights) if self.value_weights else None
        for block, layer_state in zip(self.blocks, state, strict=True):
            x = block(x, layer_state, values)
        if self.norm is not None:
            x = torch.layer_norm(x, *self.norm)
        logits = linear(x, self.head)
        if self.logit_cap:
            logits = self.logit_cap * torch.tanh(logits / self.logit_cap)
        return logits
