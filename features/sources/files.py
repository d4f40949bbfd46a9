"""A warehouse directory of parquet files: where each table lives and how to read it.

A table is either ``<warehouse>/<table>.parquet`` or a directory ``<warehouse>/<table>/`` of
parquet parts (large tables are written in customer chunks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

INPUT_TABLES: tuple[str, ...] = (
    "org",
    "rms",
    "customers",
    "rm_assignments",
    "products",
    "balances",
    "transactions",
    "interactions",
    "complaints",
)
# bank-wide tables; every other input table holds rows of one customer each (customer_id)
BANK_TABLES: tuple[str, ...] = ("org", "rms", "products")
# the customers and the tables keyed by customer: a customer batch of the feature build, or a
# chunk of the synthetic bank, holds its customers' rows of each (and of the truth table)
CUSTOMER_TABLES: tuple[str, ...] = tuple(t for t in INPUT_TABLES if t not in BANK_TABLES)
TRUTH_TABLE = "truth"
# optional inputs: validated when present, never required (docs/design.md §4);
# list_assignments holds earlier campaigns' randomised assignments (docs/design.md §14), one
# row per customer and cutoff
LIST_ASSIGNMENTS = "list_assignments"
OPTIONAL_TABLES: tuple[str, ...] = (LIST_ASSIGNMENTS,)
META_FILE = "_meta.json"


class WarehouseError(Exception):
    """A warehouse that cannot be read: missing directory or table."""


def table_files(warehouse: Path, table: str) -> list[Path]:
    """Parquet files holding ``table``, in a stable order; empty if the table is absent."""
    single = Path(warehouse) / f"{table}.parquet"
    if single.is_file():
        return [single]
    folder = Path(warehouse) / table
    if folder.is_dir():
        return sorted(folder.glob("*.parquet"))
    return []


@dataclass(frozen=True)
class FileIds:
    """A parquet file of a customer table and the smallest and largest ``customer_id`` its
    footer records (None when it records none: then it may hold anyone)."""

    path: Path
    low: object = None
    high: object = None

    def may_hold(self, first, last) -> bool:
        """Whether the file may hold a customer with an id in [first, last]."""
        if self.low is None or self.high is None:
            return True
        try:
            return not (self.high < first or self.low > last)
        except TypeError:  # ids of another kind than the footer's: cannot tell
            return True


def customer_files(warehouse: Path, table: str) -> list[FileIds]:
    """``table``'s files with the ids each holds, read from the footers (a few milliseconds a
    file): a customer batch then opens the files that may hold it, not every file of a large
    bank (at 10M customers, 400 files a table, opening them all cost ~0.8 s a batch). The
    footers' statistics are bounds even where a writer shortens long values (Parquet's rule:
    a shortened maximum is rounded up), so a file is never skipped that holds the batch."""
    return [_file_ids(path) for path in table_files(warehouse, table)]


def _file_ids(path: Path) -> FileIds:
    meta = pq.read_metadata(path)
    if "customer_id" not in meta.schema.names:
        return FileIds(path)
    column = meta.schema.names.index("customer_id")
    lows, highs = [], []
    for k in range(meta.num_row_groups):
        group = meta.row_group(k)
        if group.num_rows == 0:
            continue
        stats = group.column(column).statistics
        if stats is None or not stats.has_min_max:
            return FileIds(path)
        lows.append(stats.min)
        highs.append(stats.max)
    try:
        low, high = min(lows), max(highs)
    except (TypeError, ValueError):  # no rows at all, or statistics that do not compare
        return FileIds(path)
    if isinstance(low, bytes) or isinstance(high, bytes):  # not text: cannot tell
        return FileIds(path)
    return FileIds(path, low, high)


def table_glob(warehouse: Path, table: str) -> str:
    """A path or glob that DuckDB and Spark can read ``table`` from."""
    single = Path(warehouse) / f"{table}.parquet"
    if single.is_file():
        return str(single)
    return str(Path(warehouse) / table / "*.parquet")


def has_table(warehouse: Path, table: str) -> bool:
    return bool(table_files(warehouse, table))


def read_table(warehouse: Path, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a whole table into pandas (for small tables and tests)."""
    files = table_files(warehouse, table)
    if not files:
        raise WarehouseError(f"table {table!r} not found in {warehouse}")
    frames = [pq.read_table(f, columns=columns).to_pandas() for f in files]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_meta(warehouse: Path) -> dict:
    """The generator's metadata (``_meta.json``), or an empty dict for a real bank's warehouse."""
    path = Path(warehouse) / META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
