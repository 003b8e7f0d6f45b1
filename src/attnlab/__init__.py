"""attnlab: build, train, compare and look inside transformers."""

from .checkpoint import load
from .config import ModelConfig
from .look import attention_maps, translation_maps
from .models import DNC, NTM, Classifier, LanguageModel, MaskedLM, Seq2Seq

__all__ = [
    "DNC",
    "NTM",
    "Classifier",
    "LanguageModel",
    "MaskedLM",
    "ModelConfig",
    "Seq2Seq",
    "attention_maps",
    "load",
    "translation_maps",
]
__version__ = "0.1.0"
