"""Model families, one file per kind (registered in `MODELS`), and the layer stacks they are
built on (registered in `STACKS`)."""

from .base import Model
from .classifier import Classifier
from .dnc import DNC
from .lm import LanguageModel
from .ntm import NTM
from .sequence import SequenceModel

__all__ = ["DNC", "NTM", "Classifier", "LanguageModel", "Model", "SequenceModel"]
