"""BERT (Devlin et al. 2019) <-> attnlab's MaskedLM.

BERT's layout in attnlab's settings: post-norm blocks, LayerNorm on the embeddings, exact GELU,
LayerNorm epsilon 1e-12, learned positions. Its query, key and value maps are three Linear
layers, concatenated here into `to_qkv`. A single-segment input adds the first segment vector
at every position, which is folded into the position vectors on the way in; on the way out the
segment table is written as zeros, so attnlab -> HF -> attnlab is exact.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...data.tokenizers import HuggingFaceTokenizer, Tokenizer
from ..hf import FAMILIES, Family, Pair, linear

SEGMENTS = "embeddings.token_type_embeddings.weight"
POSITIONS = "embedding.positions.embedding.weight"


@FAMILIES.register("bert")
class BERT(Family):
    title = "BERT"
    kind = "mlm"
    prefix = "bert."
    layout = (("norm", "post"), ("embedding_norm", True))
    ignorable = ("embeddings.position_ids", "cls.predictions.decoder.bias", SEGMENTS)
    names = {
        "vocab_size": ("vocab_size", 30522), "context": ("max_position_embeddings", 512),
        "depth": ("num_hidden_layers", 12), "width": ("hidden_size", 768),
        "heads": ("num_attention_heads", 12), "norm_eps": ("layer_norm_eps", 1e-12),
        "dropout": ("hidden_dropout_prob", 0.1), "tie_weights": ("tie_word_embeddings", True),
    }  # fmt: skip
    inner = "intermediate_size"
    activation = ("hidden_act", "gelu")
    dropouts = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    requires = (
        ("position_embedding_type", "absolute", "absolute", "relative position scores"),
        ("is_decoder", False, False, "a decoder"),
    )
    fixed = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "type_vocab_size": 2,
             "initializer_range": 0.02, "pad_token_id": 0,
             "position_embedding_type": "absolute"}  # fmt: skip

    @classmethod
    def prefixed(cls, name: str) -> bool:
        return not name.startswith("cls.")

    @classmethod
    def tokenizer_arguments(cls, tokenizer: Tokenizer) -> dict[str, Any]:
        if isinstance(tokenizer, HuggingFaceTokenizer):
            return {"cls_id": tokenizer.hf.token_to_id("[CLS]")}
        return {}

    @classmethod
    def pairs(cls, model: nn.Module, tensors: dict[str, Tensor]) -> list[Pair]:
        head = "cls.predictions."
        pairs = [
            Pair("embedding.tokens.weight", ("embeddings.word_embeddings.weight",)),
            Pair(POSITIONS, ("embeddings.position_embeddings.weight",)),
            *linear("embedding.norm", "embeddings.LayerNorm"),
            *linear("head.dense", head + "transform.dense"),
            *linear("head.norm", head + "transform.LayerNorm"),
            Pair("head.output.bias", (head + "bias",)),
        ]
        for i in range(model.cfg.depth):
            ours, theirs = f"stack.blocks.{i}.", f"encoder.layer.{i}."
            qkv = (f"{theirs}attention.self.{x}" for x in ("query", "key", "value"))
            pairs += [
                *linear(ours + "attention.to_qkv", *qkv),
                *linear(ours + "attention.unify_heads", theirs + "attention.output.dense"),
                *linear(ours + "norm1", theirs + "attention.output.LayerNorm"),
                *linear(ours + "feed_forward.0", theirs + "intermediate.dense"),
                *linear(ours + "feed_forward.2", theirs + "output.dense"),
                *linear(ours + "norm2", theirs + "output.LayerNorm"),
            ]
        if not model.cfg.tie_weights:
            pairs.append(Pair("head.output.weight", (head + "decoder.weight",)))
        return pairs

    @classmethod
    def prepare(cls, theirs: dict[str, Tensor]) -> None:
        # The output bias is one tensor under two names; older files hold only one of them.
        alias = "cls.predictions.decoder.bias"
        if "cls.predictions.bias" not in theirs and alias in theirs:
            theirs["cls.predictions.bias"] = theirs[alias]

    @classmethod
    def adjust_in(cls, ours: dict[str, Tensor], theirs: dict[str, Tensor]) -> None:
        if SEGMENTS in theirs:  # every token is in segment 0
            ours[POSITIONS] = ours[POSITIONS] + theirs[SEGMENTS][0]

    @classmethod
    def adjust_out(cls, model: nn.Module, theirs: dict[str, Tensor]) -> None:
        theirs[SEGMENTS] = torch.zeros(2, model.cfg.width)
