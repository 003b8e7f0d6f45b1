"""Architecture search over attnlab's own settings (`attnlab search`), on Optuna: the space
(`space.py`), budgets (`budget.py`), regularized evolution (`evolution.py`), the study
(`study.py`), the trial's scores (`trial.py`) and the report (`report.py`).

Optuna is an optional extra (`pip install attnlab[search]`): only the modules that need it
import it, so the rest of attnlab runs without it.
"""

from ..errors import UserError

# objective -> direction; valid_* are the task's validation scores at the end of a trial
OBJECTIVES = {
    "valid_bpb": "minimize",
    "valid_accuracy": "maximize",
    "tokens_per_s": "maximize",
    "parameters": "minimize",
}
SAMPLERS = ("tpe", "random", "nsga2", "evolution")
PRUNERS = ("hyperband", "halving", "median", "none")


def require_optuna() -> None:
    """A clear message where Optuna is missing."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UserError("attnlab search needs Optuna: pip install 'attnlab[search]'") from None
