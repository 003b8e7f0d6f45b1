"""Progress bars for every step that can take long (evaluation, tokenizer training, corpus
encoding, downloads), on stderr; short loops get none."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
SHORT = 20  # loops of fewer steps finish too fast to need a bar


def progress(
    items: Iterable[T], total: int | None, what: str, unit: str = "batch", scale: bool = False
) -> Iterator[T]:
    """`items`, with a bar saying `what` is being done when there are at least SHORT of
    them. The bar disappears once done."""
    bar = tqdm(
        items, total=total, desc=what, unit=unit, unit_scale=scale, leave=False,
        mininterval=1.0, disable=total is not None and total < SHORT, dynamic_ncols=True,
    )  # fmt: skip
    yield from bar
