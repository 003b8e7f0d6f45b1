"""The plug-in tables: name -> class, one table per kind of variant.

A variant is one file that registers itself:

    @ATTENTION.register("linear")
    class LinearAttention(Core): ...

Each table knows the package its variants live in and imports every module of it the first
time it is read, so a new file is found without being listed anywhere. Config choices, the
command line's flags and `bench attention`'s kinds are all read from these tables.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Mapping[str, Any]):
    """Variants of one kind by name, discovered from the modules of `package`."""

    def __init__(self, what: str, package: str):
        self.what, self.package = what, package
        self._entries: dict[str, Any] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: make the class available under `name`; sets `cls.name`."""

        def add(cls: T) -> T:
            self.add(name, cls)
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return add

    def add(self, name: str, entry: Any) -> None:
        if name in self._entries and self._entries[name] is not entry:
            raise RuntimeError(f"two {self.what}s are registered as {name!r}")
        self._entries[name] = entry

    def discover(self) -> None:
        """Import every module of the package once, so each registers what it defines."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(getattr(package, "__path__", [])):
            importlib.import_module(f"{self.package}.{module.name}")

    def lookup(self, name: str) -> Any:
        """The entry called `name`, or a ConfigError listing the known names."""
        self.discover()
        if name not in self._entries:
            raise ConfigError(f"unknown {self.what} {name!r}; choose one of: {', '.join(self)}")
        return self._entries[name]

    def __getitem__(self, name: str) -> Any:
        self.discover()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self.discover()
        return iter(self._entries)

    def __len__(self) -> int:
        self.discover()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self)})"


ATTENTION = Registry("attention", "attnlab.attention")  # cores: q, k, v -> outputs
POSITIONS = Registry("position encoding", "attnlab.positions")
ACTIVATIONS = Registry("activation", "attnlab.block")  # feed-forward non-linearities
STACKS = Registry("layer stack", "attnlab.models")  # what sits between embedding and head
MODELS = Registry("model kind", "attnlab.models")  # what a saved folder holds: lm, classifier
OPTIMIZERS = Registry("optimiser", "attnlab.training.optimizers")
SCHEDULES = Registry("learning-rate schedule", "attnlab.training.schedules")
TASKS = Registry("task", "attnlab.tasks")  # what `attnlab train TASK` trains
COMMANDS = Registry("command", "attnlab.commands")
