"""A sequence classifier: a bidirectional stack, pooled to one vector, mapped to classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..block import norm
from ..config import ConfigError, ModelConfig
from ..registry import MODELS
from .base import Model
from .stack import InputEmbedding, build_stack, init_weights

POOLINGS = ("mean", "max", "cls")


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

    def config_dict(self) -> dict:
        return {
            "model": self.cfg.to_dict(),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
        }

    def example_inputs(self, batch: int, length: int) -> tuple[Tensor, ...]:
        tokens = torch.randint(0, self.cfg.vocab_size, (batch, length))
        lengths = torch.randint(1, length + 1, (batch,))
        return tokens, torch.arange(length)[None, :] < lengths[:, None]

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
