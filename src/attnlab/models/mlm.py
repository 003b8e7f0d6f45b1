"""A masked language model: BERT's bidirectional encoder with a head that predicts the tokens
hidden behind `[MASK]` (Devlin et al. 2019, §3.1, "Task #1: Masked LM").

The encoder is the classifier's: token embeddings plus positions (optionally LayerNormed, as
BERT does), a stack of blocks that attend in both directions, and (pre-norm only) a final
LayerNorm. The head follows BERT's `cls.predictions`:

    h' = LayerNorm(act(h W_t + b_t)),   logits = h' Eᵀ + b_out

where E is the token embedding (tied, as in BERT) and b_out the head's own output bias. With
`norm="post"`, `activation="gelu"`, `norm_eps=1e-12`, `embedding_norm=True` and learned
positions the layout is BERT's, so a HuggingFace `BertForMaskedLM` maps onto it weight for
weight (the segment embedding of a single-segment input is a constant vector, which folds into
the position embeddings).

The loss runs the head only at the positions chosen for prediction (about 15 %), not at every
position: the output projection to the vocabulary is the largest matrix product of the model.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..block import norm
from ..config import ConfigError, ModelConfig
from ..registry import ACTIVATIONS, MODELS
from .base import Model, padded_tokens
from .stack import InputEmbedding, build_stack, init_weights

IGNORE = -100  # the target of a position not chosen for prediction (PyTorch's ignore_index)


class MaskedLMHead(nn.Module):
    """Hidden states (..., width) -> vocabulary logits (..., vocab_size): a dense layer, the
    activation, a LayerNorm, then the output projection with its own bias (BERT's
    `BertLMPredictionHead`)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        activation = ACTIVATIONS[cfg.activation]
        gated = getattr(activation, "gated", False)  # a gated activation halves its input
        self.dense = nn.Linear(cfg.width, (2 if gated else 1) * cfg.width, bias=cfg.bias)
        self.activation = activation()
        self.norm = norm(cfg)
        self.output = nn.Linear(cfg.width, cfg.vocab_size, bias=cfg.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.output(self.norm(self.activation(self.dense(h))))


@MODELS.register("mlm")
class MaskedLM(Model):
    """tokens (b, t) and mask (b, t), True for real tokens -> logits (b, t, vocab_size).

    `cls_id`: the token every training sequence starts with (`[CLS]`), if any; a classifier
    started from this encoder with CLS pooling puts that token's embedding in front of its
    texts (`Classifier.from_pretrained`).
    """

    title = "masked language model"

    def __init__(self, cfg: ModelConfig, cls_id: int | None = None):
        super().__init__(cfg)
        if cls_id is not None and not 0 <= cls_id < cfg.vocab_size:
            raise ConfigError(
                f"cls_id {cls_id} lies outside the vocabulary 0..{cfg.vocab_size - 1}"
            )
        self.cls_id = cls_id
        self.embedding = InputEmbedding(cfg)
        self.stack = build_stack(cfg)
        self.norm = norm(cfg) if cfg.norm == "pre" else nn.Identity()
        self.head = MaskedLMHead(cfg)
        init_weights(self, cfg.depth)
        if cfg.tie_weights:
            self.head.output.weight = self.embedding.tokens.weight

    def config_dict(self) -> dict:
        return {"model": self.cfg.to_dict(), "cls_id": self.cls_id}

    def example_inputs(self, batch: int, length: int) -> tuple[Tensor, ...]:
        return padded_tokens(self.cfg.vocab_size, batch, length)

    def encode(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """The encoder's output (b, t, width): every position sees every real token."""
        b, t = tokens.shape
        if t > self.cfg.context:
            raise ValueError(f"{t} tokens exceed the context of {self.cfg.context}")
        if mask is not None:
            mask = mask.bool()
        x = self.embedding(tokens)  # (b, t, width)
        return self.norm(self.stack(x, mask=mask, causal=False))

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.head(self.encode(tokens, mask))  # (b, t, vocab_size)

    def loss(
        self, tokens: Tensor, mask: Tensor | None, targets: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Mean cross-entropy (nats) over the chosen positions only: `targets` (b, t) holds the
        original token there and `IGNORE` everywhere else, so an unchosen position's target
        changes nothing. The head runs at the chosen positions alone."""
        chosen = targets != IGNORE  # (b, t)
        hidden = self.encode(tokens, mask)[chosen]  # (n, width)
        logits = self.head(hidden).float()  # (n, vocab_size)
        wanted = targets[chosen]
        ce = F.cross_entropy(logits, wanted)
        accuracy = (logits.argmax(-1) == wanted).float().mean().item()
        return ce + self.stack.aux_loss, {"ce": ce.item(), "accuracy": accuracy, **self.stack.stats}
