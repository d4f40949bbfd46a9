"""Work on the next item in a thread while the caller handles this one (the feature file's row
groups read while the one before is encoded; the next batch of scores computed while the one
before is explained)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T, U = TypeVar("T"), TypeVar("U")


def ahead(items: Iterator[T], work: Callable[[T], U]) -> Iterator[tuple[T, U]]:
    """``(item, work(item))`` of each item, in order: the next item is taken and worked on in a
    thread while the caller handles this one. An error in either surfaces here; a caller that
    stops early waits for the item in hand."""

    def next_one() -> tuple[T, U] | None:
        item = next(items, None)
        return None if item is None else (item, work(item))

    with ThreadPoolExecutor(1, thread_name_prefix="retain-ahead") as pool:
        pending = pool.submit(next_one)
        while (done := pending.result()) is not None:
            pending = pool.submit(next_one)
            yield done
