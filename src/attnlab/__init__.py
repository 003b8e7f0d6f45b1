"""attnlab: build, train, compare and look inside transformers."""

from .checkpoint import load
from .config import ModelConfig
from .look import attention_maps
from .models import Classifier, LanguageModel, MaskedLM

__all__ = ["Classifier", "LanguageModel", "MaskedLM", "ModelConfig", "attention_maps", "load"]
__version__ = "0.1.0"
