"""attnlab: build, train, compare and look inside transformers."""

from .checkpoint import load
from .config import ModelConfig
from .models import DNC, NTM, Classifier, LanguageModel

__all__ = ["DNC", "NTM", "Classifier", "LanguageModel", "ModelConfig", "load"]
__version__ = "0.1.0"
