"""What every model kind shares: its configuration, what it needs of the attention core,
saving as a folder, and an incremental state for generation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..checkpoint import save
from ..config import ModelConfig, check_supports


def parameter_count(module: nn.Module) -> int:
    """Parameters of a module, each shared one (tied embeddings) counted once."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


class Model(nn.Module):
    """Base of the registered model kinds (`@MODELS.register(kind)`).

    `needs`: features the attention core must provide (`config.FEATURES`); checked before any
    layer is built. `config_dict()` is what `config.json` stores beside the model's shape, the
    keyword arguments that rebuild it.
    """

    needs: ClassVar[frozenset[str]] = frozenset()
    title: ClassVar[str] = "model"  # what messages call it
    name: ClassVar[str]

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.check(cfg)
        self.cfg = cfg

    @classmethod
    def check(cls, cfg: ModelConfig) -> None:
        """Refuse a configuration this kind of model cannot be built from."""
        check_supports(cfg, cls.needs, f"a {cls.title}")

    @property
    def kind(self) -> str:
        return self.name

    def config_dict(self) -> dict[str, Any]:
        return {"model": self.cfg.to_dict()}

    def save(self, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
        """Write `config.json` and `model.safetensors` into `folder` (created if needed), and
        the tokenizer's files if one is given: then every command that needs only a model
        (generate, eval, predict) works on the folder."""
        folder = save(self, folder)
        if tokenizer is not None:
            tokenizer.save(folder)
        return folder

    def example_inputs(self, batch: int, length: int) -> tuple[Tensor, ...]:
        """Random inputs of the shape `forward` takes, for tests and benchmarks."""
        return (torch.randint(0, self.cfg.vocab_size, (batch, length)),)


def padded_tokens(vocab_size: int, batch: int, length: int) -> tuple[Tensor, Tensor]:
    """Random tokens (batch, length) and a mask (batch, length) marking each row's real ones:
    example inputs of a model that reads padded batches."""
    tokens = torch.randint(0, vocab_size, (batch, length))
    lengths = torch.randint(1, length + 1, (batch,))
    return tokens, torch.arange(length)[None, :] < lengths[:, None]
