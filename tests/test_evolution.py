"""Regularized evolution (Real et al. 2019, Algorithm 1) as an Optuna sampler: a random
initial population, then each child is the best of a random sample of the most recent trials
with exactly one setting changed."""

import optuna
import pytest

from attnlab.search.evolution import RegularizedEvolutionSampler

optuna.logging.set_verbosity(optuna.logging.ERROR)
NAMES = ("a", "b", "c", "d")


def run(sampler, trials):
    """A study of four settings of five values each, scored by their sum (lower is better);
    each trial records the parent the sampler chose."""

    def objective(trial):
        values = [trial.suggest_categorical(n, [0, 1, 2, 3, 4]) for n in NAMES]
        trial.set_user_attr("parent", sampler.parent_of(trial.number))
        return float(sum(values))

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=trials)
    return study


def test_children_differ_from_their_parent_in_exactly_one_setting():
    study = run(RegularizedEvolutionSampler(population=5, sample=2, seed=0), 30)
    trials = study.trials
    assert all(t.user_attrs["parent"] is None for t in trials[:5])  # the random population
    for child in trials[5:]:
        parent = trials[child.user_attrs["parent"]]
        changed = [n for n in NAMES if child.params[n] != parent.params[n]]
        assert len(changed) == 1


def test_the_parent_is_the_best_of_the_population_when_all_are_drawn():
    study = run(RegularizedEvolutionSampler(population=4, sample=4, seed=1), 12)
    trials = study.trials
    for child in trials[4:]:
        population = trials[child.number - 4 : child.number]  # aging: the four most recent
        assert trials[child.user_attrs["parent"]].value == min(t.value for t in population)


def test_evolution_improves_on_its_random_start():
    study = run(RegularizedEvolutionSampler(population=6, sample=3, seed=2), 60)
    first = min(t.value for t in study.trials[:6])
    assert study.best_value < first


def test_one_objective_only_and_a_sample_no_larger_than_the_population():
    with pytest.raises(ValueError):
        RegularizedEvolutionSampler(population=2, sample=3)
    sampler = RegularizedEvolutionSampler(population=2, sample=1)
    study = optuna.create_study(sampler=sampler, directions=["minimize", "maximize"])
    with pytest.raises(ValueError, match="one objective"):
        study.optimize(lambda t: (0.0, 0.0), n_trials=1)
