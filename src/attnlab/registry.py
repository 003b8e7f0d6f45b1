"""Name -> class tables that let a new variant be one new file: the file registers its class
under the name a config field uses, and the code that builds models looks the name up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)


class Registry(dict):
    """A table of classes by name, filled by the `register(name)` class decorator."""

    def register(self, name: str) -> Callable[[T], T]:
        def add(cls: T) -> T:
            self[name] = cls
            return cls

        return add
