"""A sequence classifier: a bidirectional stack, pooled to one vector, mapped to classes."""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..block import norm
from ..checkpoint import load
from ..config import ConfigError, ModelConfig
from ..registry import MODELS
from .base import Model, padded_tokens
from .stack import InputEmbedding, build_stack, init_weights

POOLINGS = ("mean", "max", "cls")
ENCODER_PARTS = ("embedding.", "stack.", "norm.")  # what a classifier shares with an encoder


@MODELS.register("classifier")
class Classifier(Model):
    """tokens (b, t) and mask (b, t), True for real tokens -> class logits (b, num_classes).

    Pooling: the mean or the maximum over real tokens only, or the output at a learned CLS
    vector put in front of the text (BERT).
    """

    title = "classifier"

    def __init__(self, cfg: ModelConfig, num_classes: int = 2, pooling: str = "mean"):
        super().__init__(cfg)
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling {pooling!r} is not one of: {', '.join(POOLINGS)}")
        if num_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.num_classes, self.pooling = num_classes, pooling
        use_cls = pooling == "cls"
        self.embedding = InputEmbedding(cfg, extra_positions=int(use_cls))
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.width)) if use_cls else None
        self.stack = build_stack(cfg)
        self.norm = norm(cfg) if cfg.norm == "pre" else nn.Identity()
        self.head = nn.Linear(cfg.width, num_classes)
        init_weights(self, cfg.depth, cfg.zero_init)

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike | nn.Module,
        num_classes: int,
        pooling: str = "cls",
        dropout: float | None = None,
    ) -> Classifier:
        """A classifier whose encoder starts as a pretrained masked language model's (a
        `MaskedLM` or its saved folder), weight for weight; only the head is new (Devlin et
        al. 2019, §3.2, fine-tuning). `dropout` replaces the encoder's rate, if given.

        With CLS pooling the learned vector in front of the text starts as the embedding of
        the encoder's `[CLS]` token, so the first forward pass computes exactly what the
        pretrained encoder computes for `[CLS]` + text, and the context shrinks by that one
        position. Mean and max pooling read the same positions as the encoder.
        """
        encoder = load(source) if isinstance(source, (str, os.PathLike)) else source
        if getattr(encoder, "kind", None) != "mlm":
            title = getattr(encoder, "title", type(encoder).__name__)
            raise ConfigError(f"a classifier starts from a masked language model, not a {title}")
        cfg = encoder.cfg
        if dropout is not None:
            cfg = dataclasses.replace(cfg, dropout=dropout)
        if pooling == "cls":
            if encoder.cls_id is None:
                raise ConfigError(
                    "CLS pooling needs the encoder's [CLS] token, which this masked language "
                    "model does not name; pool by mean or max"
                )
            if cfg.context < 2:
                raise ConfigError("CLS pooling needs a context of at least 2")
            cfg = dataclasses.replace(cfg, context=cfg.context - 1)
        model = cls(cfg, num_classes, pooling)
        encoder_weights = encoder.state_dict()
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                if name.startswith(ENCODER_PARTS):
                    tensor.copy_(encoder_weights[name])
            if model.cls is not None:
                model.cls.copy_(encoder.embedding.tokens.weight[encoder.cls_id])
        return model.to(next(encoder.parameters()).device)

    def freeze_encoder(self) -> None:
        """Train the head only: everything below it (embeddings, CLS vector, blocks) stops
        learning, the feature-based use of a pretrained encoder (Devlin et al. 2019, §5.3)."""
        for name, p in self.named_parameters():
            if not name.startswith("head."):
                p.requires_grad_(False)

    def layer_scales(self, decay: float) -> dict[str, float]:
        """Layer-wise learning-rate decay (Howard & Ruder 2018, §3.2; Clark et al. 2020,
        appendix A): the head and final norm learn at the schedule's rate, block i of n at
        decay^(n - i), the embeddings and CLS vector at decay^(n + 1), so the lower layers, whose
        pretrained features are the most general, move least. Parameter name -> factor."""
        depth = len(getattr(self.stack, "blocks", ()))
        scales = {}
        for name, _ in self.named_parameters():
            parts = name.split(".")
            if parts[0] in ("embedding", "cls"):
                layer = 0
            elif parts[:2] == ["stack", "blocks"] and depth:
                layer = int(parts[2]) + 1
            else:
                layer = depth + 1
            scales[name] = decay ** (depth + 1 - layer)
        return scales

    def config_dict(self) -> dict:
        return {
            "model": self.cfg.to_dict(),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
        }

    def example_inputs(self, batch: int, length: int) -> tuple[Tensor, ...]:
        return padded_tokens(self.cfg.vocab_size, batch, length)

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        b, t = tokens.shape
        if t > self.cfg.context:
            raise ValueError(f"{t} tokens exceed the context of {self.cfg.context}")
        if mask is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=tokens.device)
        mask = mask.bool()
        if self.cls is not None:
            mask = F.pad(mask, (1, 0), value=True)
        x = self.embedding(tokens, prefix=self.cls)
        x = self.norm(self.stack(x, mask=mask, causal=False))  # (b, t, width)
        return self.head(self.pool(x, mask))

    def pool(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.pooling == "cls":
            return x[:, 0]
        real = mask[..., None]  # (b, t, 1)
        if self.pooling == "max":
            return x.masked_fill(~real, float("-inf")).max(dim=1).values
        return (x * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)

    def loss(
        self, tokens: Tensor, mask: Tensor, labels: Tensor, class_weights: Tensor | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        logits = self(tokens, mask)
        ce = F.cross_entropy(logits.float(), labels, weight=class_weights)
        accuracy = (logits.argmax(-1) == labels).float().mean().item()
        return ce + self.stack.aux_loss, {"ce": ce.item(), "accuracy": accuracy, **self.stack.stats}
