"""A warehouse directory of parquet files: where each table lives and how to read it.

A table is either ``<warehouse>/<table>.parquet`` or a directory ``<warehouse>/<table>/`` of
parquet parts (large tables are written in customer chunks).
"""

from __future__ import annotations

import json
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
