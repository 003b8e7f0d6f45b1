"""Model families. `model_class(kind, cfg)` picks the class a saved run folder describes."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from . import universal, xl  # noqa: F401  (register the "universal" and "xl" stacks)
from .classifier import Classifier
from .lm import LanguageModel

MODEL_KINDS: dict[str, type[nn.Module]] = {"lm": LanguageModel, "classifier": Classifier}


def model_class(kind: str, cfg: ModelConfig) -> type[nn.Module]:
    return MODEL_KINDS[kind]


__all__ = ["Classifier", "LanguageModel", "MODEL_KINDS", "model_class"]
