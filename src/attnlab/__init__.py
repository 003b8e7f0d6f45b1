"""attnlab: build, train, compare and look inside transformers."""

from .checkpoint import load
from .config import ModelConfig
from .look import attention_maps
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
]
__version__ = "0.1.0"
