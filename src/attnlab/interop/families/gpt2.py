"""GPT-2 (Radford et al. 2019) <-> attnlab's LanguageModel.

GPT-2 is attnlab's default layout: learned positions, pre-norm blocks, a final LayerNorm, the
output layer tied to the token embedding, GELU by its tanh form ("gelu_new"). Its Conv1D layers
store a Linear's weight transposed, (in, out); `c_attn`'s outputs are q | k | v, each split
into heads, as `to_qkv`'s are.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ...config import ConfigError, ModelConfig
from ...errors import UserError
from ..hf import ACTIVATIONS, FAMILIES, HF_ACTIVATIONS, Family, Pair, linear


@FAMILIES.register("gpt2")
class GPT2(Family):
    title = "GPT-2"
    kind = "lm"
    prefix = "transformer."
    layout = (("norm", "pre"), ("embedding_norm", False))
    # buffers older transformers saved beside the weights: the causal mask, not weights
    ignorable = (".attn.bias", ".attn.masked_bias")

    @classmethod
    def prefixed(cls, name: str) -> bool:
        return name != "lm_head.weight"

    @classmethod
    def model_config(cls, hf: dict[str, Any], where: str) -> tuple[ModelConfig, dict[str, Any]]:
        width = hf.get("n_embd", 768)
        inner = hf.get("n_inner") or 4 * width
        refused = {
            "scale_attn_by_inverse_layer_idx": (True, "scores scaled by 1/layer"),
            "scale_attn_weights": (False, "unscaled scores"),
            "add_cross_attention": (True, "cross-attention"),
        }
        for key, (value, what) in refused.items():
            if hf.get(key, not value) == value:
                raise UserError(f"{where}: {key}={value} ({what}) has no attnlab equivalent")
        activation = hf.get("activation_function", "gelu_new")
        if activation not in HF_ACTIVATIONS:
            raise UserError(f"{where}: activation_function {activation!r} has no attnlab "
                            f"equivalent (it reads: {', '.join(HF_ACTIVATIONS)})")  # fmt: skip
        if inner % width:
            raise UserError(f"{where}: n_inner {inner} is no multiple of n_embd {width}")
        try:
            cfg = ModelConfig(
                vocab_size=hf.get("vocab_size", 50257), context=hf.get("n_positions", 1024),
                depth=hf.get("n_layer", 12), width=width, heads=hf.get("n_head", 12),
                position="learned", norm="pre", activation=HF_ACTIVATIONS[activation],
                norm_eps=hf.get("layer_norm_epsilon", 1e-5), ff_mult=inner // width,
                dropout=hf.get("resid_pdrop", 0.1), tie_weights=hf.get("tie_word_embeddings", True),
            )  # fmt: skip
        except ConfigError as error:
            raise UserError(f"{where}: {error}") from error
        return cfg, {}

    @classmethod
    def hf_config(cls, model: nn.Module) -> dict[str, Any]:
        cfg = model.cfg
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": cfg.vocab_size,
            "n_positions": cfg.context,
            "n_embd": cfg.width,
            "n_layer": cfg.depth,
            "n_head": cfg.heads,
            "n_inner": cfg.ff_mult * cfg.width,
            "activation_function": ACTIVATIONS[cfg.activation],
            "resid_pdrop": cfg.dropout,
            "embd_pdrop": cfg.dropout,
            "attn_pdrop": cfg.dropout,
            "layer_norm_epsilon": cfg.norm_eps,
            "initializer_range": 0.02,
            "scale_attn_weights": True,
            "tie_word_embeddings": cfg.tie_weights,
        }

    @classmethod
    def pairs(cls, model: nn.Module, tensors: dict[str, Tensor]) -> list[Pair]:
        pairs = [
            Pair("embedding.tokens.weight", ("wte.weight",)),
            Pair("embedding.positions.embedding.weight", ("wpe.weight",)),
            *linear("norm", "ln_f"),
        ]
        for i in range(model.cfg.depth):
            ours, theirs = f"stack.blocks.{i}.", f"h.{i}."
            pairs += [
                *linear(ours + "attention.to_qkv", theirs + "attn.c_attn", transposed=True),
                *linear(ours + "attention.unify_heads", theirs + "attn.c_proj", transposed=True),
                *linear(ours + "norm1", theirs + "ln_1"),
                *linear(ours + "norm2", theirs + "ln_2"),
                *linear(ours + "feed_forward.0", theirs + "mlp.c_fc", transposed=True),
                *linear(ours + "feed_forward.2", theirs + "mlp.c_proj", transposed=True),
            ]
        if not model.cfg.tie_weights:
            pairs.append(Pair("head.weight", ("lm_head.weight",)))
        return pairs
