"""The search space: attnlab's own settings, each fixed or free.

A space has the sections of a settings file ("model", "train", "data"); each entry names a
setting as `attnlab train` does (`attention`, `lr`, `sparse.pattern`) and says what it may be:

    model:
      attention: [dense, sparse, linear]      # a list: one of these
      depth: {low: 2, high: 8}                # a range of integers
      qkv_conv: 3                             # a single value: fixed
    train:
      lr: {low: 1.0e-4, high: 1.0e-2, log: true}

A space file (YAML or JSON) is laid over the default space: its entries replace the default's,
an entry set to null removes one, and `base: none` starts from nothing instead. Every name and
every value is checked, as a settings file's are, before the first trial. A variant's options
(`sparse.pattern`) are only drawn in trials that choose that variant.

The default space is what the Primer search (So et al. 2021) let its search decide, in
attnlab's words: the attention core, positions, norm placement, the activation (ReLU², SwiGLU),
Primer's depthwise convolution after q, k and v, depth, heads, feed-forward size and the
learning rate. The width is not in it: under a budget (`--max-parameters`, `--max-flops`) each
trial takes the widest model that fits, so every trial spends the same budget.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from ..config import ModelConfig, TrainConfig
from ..errors import ConfigError
from ..registry import ATTENTION, MODELS
from ..settings_file import SECTIONS, check_section, read_structured

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "model": {
        "attention": None,  # filled per task: the cores its model can use
        "position": ["learned", "rope"],  # ALiBi needs a score bias: dense attention only
        "norm": ["pre", "post"],
        "activation": ["relu", "gelu", "relu2", "swiglu"],
        "qkv_conv": [0, 3],
        "depth": {"low": 2, "high": 8},
        "heads": [2, 4, 8],
        "ff_mult": {"low": 2, "high": 6},
        "sparse.pattern": ["strided", "fixed", "local"],
    },
    "train": {"lr": {"low": 3e-4, "high": 1e-2, "log": True}},
}


def usable_cores(task: type) -> list[str]:
    """The attention cores the task's model can use (a language model needs causal ones),
    leaving out those without projections (nothing for heads or width to shape)."""
    needs = set().union(*(MODELS[kind].needs for kind in task.model_kinds))
    return [name for name, core in ATTENTION.items()
            if needs <= set(core.provides) and not core.parameter_free]  # fmt: skip


def default_space(task: type) -> dict[str, dict[str, Any]]:
    space = copy.deepcopy(DEFAULT_SPACE)
    space["model"]["attention"] = usable_cores(task)
    return space


@dataclasses.dataclass
class Entry:
    """One setting of the space: fixed (`value`), one of `choices`, or in [low, high]."""

    section: str
    name: str
    value: Any = None
    choices: list | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def fixed(self) -> bool:
        return self.choices is None and self.low is None


def sections_of(task: type) -> dict[str, type]:
    return {"model": ModelConfig, "train": TrainConfig, "data": task.Data}


def check_one(section: str, cls: type, name: str, value: Any, where: str) -> Any:
    """A value of a setting, checked and normalised as a settings file's is."""
    checked = check_section({name: value}, cls, f"{where}: {section}")
    if "options" in checked:
        (variant, options), = checked["options"].items()  # fmt: skip
        return next(iter(options.values()))
    return next(iter(checked.values()))


def parse_entry(section: str, cls: type, name: str, spec: Any, where: str) -> Entry:
    label = f"{where}: {section}.{name}"
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{label}: an empty list of choices")
        choices = [check_one(section, cls, name, v, where) for v in spec]
        return Entry(section, name, choices=choices)
    if isinstance(spec, dict):
        unknown = set(spec) - {"low", "high", "log", "step"}
        if unknown or "low" not in spec or "high" not in spec:
            raise ConfigError(f"{label}: a range is {{low: L, high: H}} with optional log and "
                              f"step; got {spec!r}")  # fmt: skip
        low, high = (check_one(section, cls, name, spec[k], where) for k in ("low", "high"))
        if not isinstance(low, (int, float)) or isinstance(low, bool) or not low < high:
            raise ConfigError(f"{label}: a range needs numbers with low < high, got {spec!r}")
        log = bool(spec.get("log", False))
        if log and low <= 0:
            raise ConfigError(f"{label}: a log range must start above 0, got low {low}")
        if log and spec.get("step") not in (None, 1):
            raise ConfigError(f"{label}: a range is either log or stepped, not both")
        return Entry(section, name, low=low, high=high, log=log, step=spec.get("step"))
    return Entry(section, name, value=check_one(section, cls, name, spec, where))


def load_space(source: str, task: type) -> list[Entry]:
    """The space `source` names: "default", or a YAML / JSON file laid over the default."""
    space = default_space(task)
    where = "default space"
    if source != "default":
        where = source
        data = read_structured(Path(source), "space file")
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping with sections {', '.join(SECTIONS)}")
        unknown = sorted(set(data) - {*SECTIONS, "base"})
        if unknown:
            names = ", ".join(map(str, unknown))
            raise ConfigError(f"{source}: unknown section(s) {names}; a space holds "
                              f"{', '.join(SECTIONS)} (and base: default|none)")  # fmt: skip
        if data.get("base", "default") not in ("default", "none"):
            raise ConfigError(f"{source}: base is default or none, not {data['base']!r}")
        if data.get("base") == "none":
            space = {}
        for section in SECTIONS:
            given = data.get(section) or {}
            if not isinstance(given, dict):
                raise ConfigError(f"{source}: {section}: expected a mapping of settings")
            space.setdefault(section, {}).update(given)
    entries = []
    classes = sections_of(task)
    for section, settings in space.items():
        for name, spec in settings.items():
            if spec is not None:
                entries.append(parse_entry(section, classes[section], str(name), spec, where))
    return entries


def variant_setting(name: str, config: type) -> str | None:
    """For a variant option `VARIANT.OPTION`, the setting that chooses VARIANT."""
    variant = name.partition(".")[0]
    return next((s for s, r in config.VARIANTS.items() if variant in r), None)


def sample(trial: Any, entries: list[Entry], base: dict[str, Any]) -> dict[str, Any]:
    """The trial's settings (`setting name -> value`): variant choices first, then options of
    the chosen variants only, then the rest. `base` holds the settings a trial starts from,
    for variants the space leaves fixed."""
    chosen: dict[str, Any] = {}
    first = [e for e in entries if "." not in e.name]
    later = [e for e in entries if "." in e.name]
    for entry in first + later:
        if "." in entry.name:
            config = ModelConfig if entry.section == "model" else TrainConfig
            setting = variant_setting(entry.name, config)
            if chosen.get(setting, base.get(setting)) != entry.name.partition(".")[0]:
                continue
        chosen[entry.name] = draw(trial, entry)
    return chosen


def draw(trial: Any, entry: Entry) -> Any:
    if entry.fixed:
        return entry.value
    if entry.choices is not None:
        return trial.suggest_categorical(entry.name, entry.choices)
    if isinstance(entry.low, int) and isinstance(entry.high, int):
        return trial.suggest_int(entry.name, entry.low, entry.high, step=int(entry.step or 1),
                                 log=entry.log)  # fmt: skip
    return trial.suggest_float(entry.name, entry.low, entry.high, log=entry.log,
                               step=entry.step)  # fmt: skip
