"""attnlab: build, train, compare and look inside transformers."""

from .checkpoint import load
from .config import ModelConfig
from .models import Classifier, LanguageModel, Seq2Seq

__all__ = ["Classifier", "LanguageModel", "ModelConfig", "Seq2Seq", "load"]
__version__ = "0.1.0"
