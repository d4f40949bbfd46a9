"""A table's key proved unique from its parquet files, file by file, without grouping.

Banks' exports, and the synthetic bank, write a large table sorted by its key and cut into
files. Then each file's keys rise row after row and the files' key ranges do not overlap,
which proves that no key repeats: one streaming pass, each file on a thread of its own
(Arrow's readers and comparisons run outside the GIL). 53M balances in ~1.3 s on 2 cores,
against 3.5 s for the same proof as one window over the table (one thread) and 8 s for
grouping the keys.

A proof, not a check: a file whose keys do not rise (unsorted, a null key, a repeat), or
ranges that overlap, proves nothing and the caller groups the keys to count the repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import pyarrow as arrow
import pyarrow.compute as pc
import pyarrow.parquet as pq

THREADS = 2  # the machine's cores (docs/design.md §9); more only queue for them

Key = tuple  # one row's key values, compared as Python values (bytes order for text)
Span = tuple[Key, Key]  # a file's first and last key


def keys_rise(paths: Sequence[Path], key: Sequence[str]) -> bool:
    """True when the files' keys rise row after row within each file and the files' key
    ranges are apart: then no value of ``key`` repeats in the table. False proves nothing."""
    with ThreadPoolExecutor(THREADS) as pool:
        spans = list(pool.map(lambda path: _rising_span(path, tuple(key)), paths))
    if any(span is None for span in spans):
        return False
    try:
        held = sorted((span for span in spans if span != ()), key=lambda span: span[0])
        return all(before[1] < after[0] for before, after in pairwise(held))
    except TypeError:  # ids of another kind in another file: cannot tell here
        return False


def _rising_span(path: Path, key: tuple[str, ...]) -> Span | tuple | None:
    """The file's first and last key if its keys rise row after row (``()`` for a file
    without rows), else None; read a row group at a time."""
    try:
        parquet = pq.ParquetFile(path)
        first = last = None
        for group in range(parquet.num_row_groups):
            rows = parquet.read_row_group(group, columns=list(key), use_threads=False)
            if rows.num_rows == 0:
                continue
            if any(rows.column(c).null_count for c in key) or not _rises(rows, key):
                return None
            start, end = _key_at(rows, key, 0), _key_at(rows, key, rows.num_rows - 1)
            if last is not None and not last < start:
                return None
            if first is None:
                first = start
            last = end
    except (OSError, arrow.ArrowException, TypeError):
        return None  # unreadable or incomparable: the checks that read it say why
    return () if first is None else (first, last)


def _rises(rows: arrow.Table, key: tuple[str, ...]) -> bool:
    """Whether every row's key is above the row's before it (the last column deciding ties
    of the columns before it)."""
    n = rows.num_rows
    rises = None
    for column in reversed(key):
        values = rows.column(column)
        now, before = values.slice(1, n - 1), values.slice(0, n - 1)
        above = pc.greater(now, before)
        rises = above if rises is None else pc.or_(above, pc.and_(pc.equal(now, before), rises))
    return n < 2 or pc.all(rises).as_py() is True


def _key_at(rows: arrow.Table, key: tuple[str, ...], i: int) -> Key:
    return tuple(rows.column(c)[i].as_py() for c in key)
