"""Settings files: `attnlab train TASK --config FILE`, JSON or YAML.

A file holds the sections a run's checkpoint stores: "model", "train" and "data" (and
optionally "task", which must then name the task being trained). Each section maps setting
names to values, as the flags would give them; a variant's own options go under "options"
(`{"options": {"nystrom": {"landmarks": 32}}}`) or by their flag's name
(`"nystrom.landmarks": 32`). Names and values are checked here, field by field, with messages
that name the file: a typo is never silently ignored. YAML is read with `safe_load`: plain
data only, never objects.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .config import check_setting, option_names, options_of
from .errors import ConfigError, UserError

SECTIONS = ("model", "train", "data")
YAML_SUFFIXES = (".yaml", ".yml")


def read_structured(path: str | Path, what: str = "settings file") -> Any:
    """The data of a JSON or YAML file (by its suffix; JSON otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such {what}")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in YAML_SUFFIXES:
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file ({error})") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from error
    except Exception as error:  # yaml.YAMLError, imported lazily
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML ({problem}{where})") from error


def check_section(values: Any, cls: type, where: str) -> dict[str, Any]:
    """One section's settings, each checked against its field in `cls` (choices, bounds,
    type); variant options nested under "options", by variant."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if "help" in f.metadata}
    variants = getattr(cls, "VARIANTS", {})
    checked: dict[str, Any] = {}
    options: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        key = str(name).replace("-", "_")
        if key == "options" and variants:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.options: expected a mapping by variant")
            for variant, settings in value.items():
                if not isinstance(settings, dict):
                    raise ConfigError(f"{where}.options.{variant}: expected a mapping")
                for option, v in settings.items():
                    options.setdefault(variant, {})[option] = v
        elif "." in key and variants:
            variant, _, option = key.partition(".")
            options.setdefault(variant, {})[option] = value
        elif key in fields:
            checked[key] = check_setting(fields[key], f"{where}.{name}", value)
        else:
            raise ConfigError(f"{where}: unknown setting {name!r}")
    if options:
        checked["options"] = check_options(options, variants, where)
    return checked


def check_options(options: dict, variants: dict, where: str) -> dict[str, dict[str, Any]]:
    """Variant options: the variant must exist in one of the config's registries, the option
    among its own, the value allowed."""
    checked: dict[str, dict[str, Any]] = {}
    for name, values in options.items():
        variant = next((r[name] for r in variants.values() if name in r), None)
        if variant is None:
            raise ConfigError(f"{where}: options for {name!r}, which is no known variant")
        fields = {f.name: f for f in dataclasses.fields(options_of(variant))}
        for option, value in values.items():
            key = str(option).replace("-", "_")
            if key not in fields:
                known = ", ".join(option_names(variant)) or "none"
                raise ConfigError(
                    f"{where}: {name} has no option {option!r} (its options: {known})"
                )
            label = f"{where}.{name}.{option}"
            checked.setdefault(name, {})[key] = check_setting(fields[key], label, value)
    return checked


def read_settings_file(
    path: str | Path, task: str, sections: dict[str, type]
) -> dict[str, dict[str, Any]]:
    """The checked sections of a settings file for a run of `task`; `sections` maps "model",
    "train" and "data" to their dataclasses."""
    data = read_structured(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(data) - {*SECTIONS, "task", "format_version"})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(map(str, unknown))}; "
                          f"a settings file holds {', '.join(SECTIONS)}")  # fmt: skip
    if data.get("task", task) != task:
        raise ConfigError(f"{path}: holds settings of a {data['task']} run, not {task}")
    return {
        section: check_section(data.get(section) or {}, cls, f"{path}: {section}")
        for section, cls in sections.items()
    }
