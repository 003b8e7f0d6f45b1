"""Universal Transformer (Dehghani et al. 2019) with adaptive computation time (Graves 2016).

One block, its weights shared, is applied again and again. Before every application the
coordinate embedding of §2.1 is added to the state: the sinusoid of the position plus the
sinusoid of the step,

    P^n_{i,2j} = sin(i / 10000^{2j/d}) + sin(n / 10000^{2j/d}),  and cos likewise for 2j+1,

so the block knows both where and at which step it is.

With ACT (Graves 2016, §2; Dehghani et al. 2019, §2.2) each position decides on its own how
many steps it takes. At step n it emits a halting probability p^n = σ(w·(s^{n-1} + P^n) + b)
and halts at the first step N whose probabilities reach 1 - ε (or at `max_steps`). Its output
is the mean of its states weighted by p^1 … p^{N-1} and the remainder R = 1 - Σ_{n<N} p^n, so
the weights sum to one. A halted position keeps its state: later steps still read it as a key
and value, but no longer change it. The ponder cost τ·(N + R), averaged over real positions, is
added to the training loss; R carries its gradient (N is a count).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..block import Block
from ..config import ModelConfig, option
from ..positions import sinusoidal_table
from ..registry import STACKS
from .stack import LayerStates, layer_states


class HaltingUnit(nn.Module):
    """p = σ(w·s + b) per position: (b, t, width) -> (b, t).

    The bias is a plain parameter rather than a Linear's, so the models' initialisation (which
    zeroes Linear biases) keeps its starting value of 1 (the paper's `act_halting_bias_init`).
    """

    def __init__(self, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, width))
        self.bias = nn.Parameter(torch.ones(()))

    def forward(self, state: Tensor) -> Tensor:
        return torch.sigmoid(state @ self.weight[0] + self.bias)


@STACKS.register("universal")
class UniversalTransformer(nn.Module):
    """One shared block applied repeatedly, adaptively per position (Dehghani et al. 2019).

    The block runs `max_steps` times, or with ACT until each position halts (Graves 2016).

    After a forward pass with ACT, `halting_probabilities` and `halting_weights`
    (b, t, steps run) hold each position's p^n and the weight its n-th state got in the output.
    """

    uses_depth = False  # one shared block: the steps are its depth

    @dataclass
    class Options:
        max_steps: int = option(6, "most applications of the shared block", at_least=1)
        act: bool = option(True, "adaptive computation time (else a fixed number of steps)")
        act_epsilon: float = option(
            0.01, "ACT: a position halts once its halting sum reaches 1-eps", above=0, below=1
        )
        ponder_cost: float = option(
            0.01, "ACT: weight tau of the ponder cost tau*(N+R)", at_least=0
        )

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        options = cfg.options_for(self)
        self.block = Block(cfg)
        self.max_steps, self.act = options.max_steps, options.act
        self.threshold = 1.0 - options.act_epsilon
        self.ponder_cost = options.ponder_cost
        self.halting = HaltingUnit(cfg.width) if options.act else None
        # The classifier's CLS vector takes one position more than the context.
        table = sinusoidal_table(cfg.context + 1, cfg.width)
        self.register_buffer("position_sinusoids", table, persistent=False)
        steps = sinusoidal_table(options.max_steps, cfg.width, start=1)  # row n - 1: step n
        self.register_buffer("step_sinusoids", steps, persistent=False)
        self.aux_loss: Tensor | float = 0.0
        self.stats: dict[str, float] = {}
        self.halting_probabilities: Tensor | None = None
        self.halting_weights: Tensor | None = None

    @classmethod
    def describe(cls, cfg: ModelConfig) -> str:
        options = cfg.options["universal"]
        steps = (
            f"up to {options['max_steps']} steps (ACT)"
            if options["act"]
            else (f"{options['max_steps']} steps")
        )
        return f"1 shared block × {steps}"

    def new_state(self, capacity: int) -> LayerStates | None:
        """One state per step of the shared block."""
        return layer_states([self.block.new_state(capacity) for _ in range(self.max_steps)])

    def coordinates(self, n: int, t: int, start: int) -> Tensor:
        """P^n for positions start … start + t - 1: (t, width)."""
        if start + t > self.position_sinusoids.shape[0]:
            table = sinusoidal_table(t, self.position_sinusoids.shape[1], start)
            return table.to(self.step_sinusoids.device) + self.step_sinusoids[n - 1]
        return self.position_sinusoids[start : start + t] + self.step_sinusoids[n - 1]

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        state: LayerStates | None = None,
    ) -> Tensor:
        """x (b, t, width) -> (b, t, width); `mask` (b, s) marks real tokens (s = t without a
        cache); `state` holds one key/value cache per step."""
        b, t, _ = x.shape
        start = state.length if state is not None else 0

        def apply_block(n: int, s: Tensor) -> Tensor:
            return self.block(
                s, mask=mask, causal=causal, state=None if state is None else state[n - 1]
            )

        if not self.act:
            for n in range(1, self.max_steps + 1):
                x = apply_block(n, x + self.coordinates(n, t, start))
            self.aux_loss = 0.0
            steps = float(self.max_steps)
            self.stats = {"ponder_steps_mean": steps, "ponder_steps_max": steps}
            return x

        real = torch.ones(b, t, dtype=torch.bool, device=x.device)
        if mask is not None:
            real = mask[:, -t:].bool()
        running = torch.ones(b, t, dtype=torch.bool, device=x.device)
        total = x.new_zeros(b, t)  # Σ p^n over the steps before the halting one
        steps = x.new_zeros(b, t)  # N
        remainder = x.new_zeros(b, t)  # R
        output = torch.zeros_like(x)
        probabilities, weights = [], []
        for n in range(1, self.max_steps + 1):
            # Without a cache nothing changes once every position halted. With one, every step
            # runs, so that each step's cache holds every position for the tokens to come.
            if state is None and not running.any():
                break
            coordinated = x + self.coordinates(n, t, start)
            # Padding halts at once and never counts; real positions do not see it anyway.
            p = self.halting(coordinated).masked_fill(~real, 1.0)  # (b, t)
            halts = running & ((total + p >= self.threshold) | (n == self.max_steps))
            weight = torch.where(halts, 1.0 - total, torch.where(running, p, 0.0))
            remainder = torch.where(halts, 1.0 - total, remainder)
            steps = steps + running
            total = total + torch.where(running & ~halts, p, 0.0)
            new = apply_block(n, coordinated)  # (b, t, width)
            output = output + weight[..., None] * new
            x = torch.where(running[..., None], new, x)  # halted positions keep their state
            running = running & ~halts
            probabilities.append(p.detach())
            weights.append(weight.detach())
        self.halting_probabilities = torch.stack(probabilities, dim=-1)  # (b, t, steps run)
        self.halting_weights = torch.stack(weights, dim=-1)
        count = real.sum().clamp(min=1)
        self.aux_loss = self.ponder_cost * ((steps + remainder) * real).sum() / count
        real_steps = steps[real]
        self.stats = {
            "ponder_steps_mean": real_steps.mean().item() if real_steps.numel() else 0.0,
            "ponder_steps_max": real_steps.max().item() if real_steps.numel() else 0.0,
        }
        return output
