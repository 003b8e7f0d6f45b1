"""Regularized evolution (Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search", Algorithm 1) as an Optuna sampler.

The population is the last P trials to finish (aging: a model leaves the population because it
is old, not because it is bad, which Real et al. found guards against lucky early draws). For
each new trial: draw S members of the population at random, take the best as the parent, and
copy its settings with one of them changed at random (the mutation). Until P trials have
finished, trials are drawn at random: the initial population.

Optuna's define-by-run trials ask for one setting at a time (`sample_independent`); a setting
the parent did not have (an option of a variant the mutation just chose) is drawn at random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState


@dataclass
class Plan:
    """What a trial inherits: its parent's settings and the one to change."""

    parent: int  # trial number
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    mutate: str


class RegularizedEvolutionSampler(BaseSampler):
    """Tournament selection of size `sample` from the `population` most recent finished
    trials, then one mutation. One objective only."""

    TRIES = 20  # redraws to find a mutated value that differs from the parent's

    def __init__(self, population: int = 10, sample: int = 3, seed: int | None = None):
        if not 1 <= sample <= population:
            raise ValueError(f"need 1 <= sample <= population, got {sample} and {population}")
        self.population, self.sample = population, sample
        self.rng = np.random.RandomState(seed)
        self.random = RandomSampler(seed=seed)
        self.plans: dict[int, Plan] = {}

    def reseed_rng(self) -> None:
        self.rng.seed()
        self.random.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict) -> dict:
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if len(study.directions) != 1:
            raise ValueError("regularized evolution optimises one objective")
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < self.population:
            return  # the initial population: random
        alive = sorted(done, key=lambda t: t.number)[-self.population :]
        drawn = [alive[i] for i in self.rng.choice(len(alive), self.sample, replace=False)]
        sign = 1 if study.direction == StudyDirection.MINIMIZE else -1
        parent = min(drawn, key=lambda t: sign * t.value)
        if not parent.params:
            return
        mutate = str(self.rng.choice(sorted(parent.params)))
        self.plans[trial.number] = Plan(parent.number, dict(parent.params),
                                        dict(parent.distributions), mutate)  # fmt: skip

    def parent_of(self, number: int) -> int | None:
        """The parent of a running trial (None while the population is being filled)."""
        plan = self.plans.get(number)
        return plan.parent if plan else None

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, distribution: BaseDistribution
    ) -> Any:
        plan = self.plans.get(trial.number)
        inherited = (
            plan is not None
            and param_name in plan.params
            and plan.distributions[param_name] == distribution
        )
        if not inherited:
            return self.random.sample_independent(study, trial, param_name, distribution)
        old = plan.params[param_name]
        if param_name != plan.mutate:
            return old
        for _ in range(self.TRIES):  # a mutation changes the value, where it can
            new = self.random.sample_independent(study, trial, param_name, distribution)
            if new != old:
                return new
        return old

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self.plans.pop(trial.number, None)
