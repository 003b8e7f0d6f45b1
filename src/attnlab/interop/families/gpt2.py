"""GPT-2 (Radford et al. 2019) <-> attnlab's LanguageModel.

GPT-2 is attnlab's default layout: learned positions, pre-norm blocks, a final LayerNorm, the
output layer tied to the token embedding, GELU by its tanh form ("gelu_new"). Its Conv1D layers
store a Linear's weight transposed, (in, out); `c_attn`'s outputs are q | k | v, each split
into heads, as `to_qkv`'s are.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..hf import FAMILIES, Family, Pair, linear


@FAMILIES.register("gpt2")
class GPT2(Family):
    title = "GPT-2"
    kind = "lm"
    prefix = "transformer."
    layout = (("norm", "pre"), ("embedding_norm", False))
    # buffers older transformers saved beside the weights: the causal mask, not weights
    ignorable = (".attn.bias", ".attn.masked_bias")
    names = {
        "vocab_size": ("vocab_size", 50257), "context": ("n_positions", 1024),
        "depth": ("n_layer", 12), "width": ("n_embd", 768), "heads": ("n_head", 12),
        "norm_eps": ("layer_norm_epsilon", 1e-5), "dropout": ("resid_pdrop", 0.1),
        "tie_weights": ("tie_word_embeddings", True),
    }  # fmt: skip
    inner = "n_inner"
    activation = ("activation_function", "gelu_new")
    dropouts = ("resid_pdrop", "embd_pdrop", "attn_pdrop")
    requires = (
        ("scale_attn_by_inverse_layer_idx", False, False, "scores scaled by 1/layer"),
        ("scale_attn_weights", True, True, "unscaled scores"),
        ("add_cross_attention", False, False, "cross-attention"),
    )
    fixed = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
             "initializer_range": 0.02, "scale_attn_weights": True}  # fmt: skip

    @classmethod
    def prefixed(cls, name: str) -> bool:
        return name != "lm_head.weight"

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
