"""Model families, one file per kind (registered in `MODELS`), and the layer stacks they are
built on (registered in `STACKS`)."""

from .base import Model
from .classifier import Classifier
from .dnc import DNC
from .lm import LanguageModel
from .mlm import MaskedLM
from .ntm import NTM
from .seq2seq import Seq2Seq
from .sequence import SequenceModel

__all__ = ["DNC", "NTM", "Classifier", "LanguageModel", "MaskedLM", "Model", "Seq2Seq",
           "SequenceModel"]  # fmt: skip
