"""The Optuna study of a search: where it is stored, how trials are drawn and pruned, and
which way each objective points.

Storage, by URL:
    sqlite:///search.db          one file; any number of processes on one machine
    journal:search.journal       Optuna's append-only journal file; one machine, or a shared
                                 file system with working locks
    postgresql://user:pw@host/db, mysql+pymysql://user:pw@host/db
                                 a database server: processes on many machines (needs the
                                 database's Python driver, e.g. psycopg2 or pymysql)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna

from ..errors import UserError
from . import OBJECTIVES
from .evolution import RegularizedEvolutionSampler

DATABASES = ("sqlite:", "postgresql", "mysql", "oracle", "mssql")


def storage_for(url: str, create: bool = True) -> Any:
    """An Optuna storage from a URL (see the module's docstring); `create`: a journal file
    that does not exist yet may be started."""
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal:") :])
        if not create and not path.is_file():
            raise UserError(f"--storage {url}: no such journal file")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith(DATABASES):
        try:
            return optuna.storages.RDBStorage(url)
        except Exception as error:  # a driver missing, a server unreachable, a bad URL
            raise UserError(f"--storage {url}: cannot open ({error})") from error
    raise UserError(f"--storage {url!r}: give sqlite:///FILE, journal:FILE, or a database URL "
                    "(postgresql://..., mysql+pymysql://...)")  # fmt: skip


def make_sampler(name: str, objectives: int, seed: int, population: int, tournament: int):
    if name == "evolution":
        if objectives != 1:
            raise UserError("--sampler evolution optimises one objective; use nsga2 or tpe")
        return RegularizedEvolutionSampler(population, tournament, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # multivariate, grouped: the settings of a conditional space are modelled jointly
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def make_pruner(name: str, checks: int):
    """Pruners over the trial's `checks` intermediate validation scores (1 ... checks)."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=checks)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def open_study(storage: Any, name: str, objectives: tuple[str, ...] | None = None, **make: Any):
    """The study `name` in `storage`: created (with `objectives`) if absent, else loaded; a
    study created for other objectives is refused."""
    if objectives is None:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            known = optuna.get_all_study_names(storage)
            raise UserError(f"no study {name!r} in that storage; it holds: "
                            f"{', '.join(known) or 'none'}") from None  # fmt: skip
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=[OBJECTIVES[o] for o in objectives],
        load_if_exists=True,
        **make,
    )
    saved = study.user_attrs.get("objectives")
    if saved is None:
        study.set_user_attr("objectives", list(objectives))
    elif list(saved) != list(objectives):
        raise UserError(f"study {name!r} optimises {', '.join(saved)}, not "
                        f"{', '.join(objectives)}; give the same --objective or another "
                        "--study")  # fmt: skip
    return study
