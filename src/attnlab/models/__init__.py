"""Model families, one file per kind (registered in `MODELS`), and the layer stacks they are
built on (registered in `STACKS`)."""

from .base import Model
from .classifier import Classifier
from .lm import LanguageModel
from .mlm import MaskedLM
from .seq2seq import Seq2Seq

__all__ = ["Classifier", "LanguageModel", "MaskedLM", "Model", "Seq2Seq"]
