"""A training callback that scores a search trial while it trains: the validation score at
`checks` evenly spaced points of its budget (steps or minutes alike), reported to the Optuna
trial, which may prune it (Hyperband, successive halving: a bad start buys no more time); and
the final score and training speed as the trial's objectives."""

from __future__ import annotations

import statistics
from typing import Any

from ..training.loop import Callback, Run

PRUNED = "pruned"  # what `Run.stop` says of a pruned trial


class TrialScores(Callback):
    """`metric`: the validation score to report ("valid_bpb"); `prune`: report and ask the
    trial (Optuna reports take one objective only, so a two-objective search does not)."""

    def __init__(self, trial: Any, metric: str, checks: int, prune: bool, log: Any = None):
        self.trial, self.metric, self.checks, self.prune, self.log = (
            trial,
            metric,
            checks,
            prune,
            log,
        )
        self.done = 0  # checks reported
        self.rates: list[float] = []
        self.final: float | None = None

    def score(self, run: Run) -> float:
        with run.autocast():
            result = run.task.evaluate(run.model, "valid", quick=True)
        if self.log is not None:
            self.log.write(run.step, **result, seconds=round(run.seconds, 3))
        return float(result[self.metric])

    def step(self, run: Run) -> None:
        if run.report:
            self.rates.append(run.report["tokens_per_s"])
        due = min(self.checks - 1, int(run.fraction * self.checks))
        if not self.prune or due <= self.done:  # without a pruner only the final score counts
            return
        self.done = due
        value = self.score(run)
        if self.prune:
            self.trial.report(value, due)
            if self.trial.should_prune():
                run.stop = PRUNED

    def end(self, run: Run) -> None:
        if run.stop is None:
            self.final = self.score(run)

    @property
    def tokens_per_s(self) -> float:
        """The median training speed reported (the first, slower steps weigh no more)."""
        return statistics.median(self.rates) if self.rates else 0.0
