"""The LSTM baseline of the external-memory papers (Hochreiter & Schmidhuber 1997; the NTM
paper's comparison, Graves et al. 2014 §4): stacked LSTM layers, no external memory.

Its whole state is the cells' (h, c), so what it can remember grows with its width, not with
a memory; the NTM paper's claim is that such a network learns the training lengths of copy or
associative recall but not the algorithm, and fails on longer sequences. The layers run as one
fused `nn.LSTM` over the whole sequence (no Python loop over positions).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..config import ModelConfig, option
from ..registry import STACKS
from .memory import Carry, RecurrentStack, lstm_forget_bias


@STACKS.register("lstm")
class LSTMStack(RecurrentStack):
    """Stacked LSTM layers of `--width` units (Hochreiter & Schmidhuber 1997).

    The baseline of the NTM and DNC papers."""

    @dataclass
    class Options:
        layers: int = option(3, "LSTM layers (the NTM paper's baseline has 3)", at_least=1)

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.layers = cfg.options_for(self).layers
        self.lstm = nn.LSTM(cfg.width, cfg.width, num_layers=self.layers, batch_first=True)
        lstm_forget_bias(self.lstm)

    def initial(self, batch: int, like: Tensor) -> Carry:
        zeros = like.new_zeros(self.layers, batch, self.width)
        return {"h": zeros, "c": zeros}

    def run(self, x: Tensor, carry: Carry, trace: list | None) -> tuple[Tensor, Carry]:
        # nn.LSTM keeps its state layer-first: (layers, b, width).
        y, (h, c) = self.lstm(x, (carry["h"], carry["c"]))
        return y, {"h": h, "c": c}
