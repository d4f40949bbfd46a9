"""Where validation reads a warehouse: each table's parts and their types (parquet footers or
the database's catalogue, never a row), and the tables as Ibis expressions on the engine that
computes the checks — DuckDB or Spark over a directory, PostgreSQL, a Spark catalog database.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as arrow
import pyarrow.parquet as pq

from features.config import WarehouseConfig
from features.schema_checks import BACKEND_ERRORS, Violation, parquet_tables
from features.sources import database
from features.sources.database import as_location, is_database_url
from features.sources.files import read_meta, table_files, table_glob
from features.sources.key_order import keys_rise

# DuckDB may hold this much while it checks (hash tables of the keys, the joins), spilling
# the rest to a scratch folder: validation must not be the monthly run's peak (docs/design.md §9:
# 1M customers within 2 GB for the whole process).
DUCKDB_MEMORY_LIMIT = "1GB"


@dataclass
class Part:
    """A parquet file, or a whole table of a database: its name in a violation, the types of
    the columns it has (None when it cannot be read, and ``error`` says why) and its rows
    (counted only when a violation needs them)."""

    name: str
    schema: dict[str, dt.DataType] | None
    count: Callable[[], int] = field(repr=False)
    error: str = ""
    unreadable_rule: str = "readable parquet"

    @cached_property
    def rows(self) -> int:
        return self.count()


@contextmanager
def open_tables(warehouse: Path | str, settings: WarehouseConfig) -> Iterator[object]:
    """The tables of ``warehouse`` on the engine ``settings`` name (a database computes its
    own); the connection is closed afterwards (a Spark session stays, as for the build)."""
    from features.engine import EngineError, connect, spark_database

    location = as_location(warehouse)
    if is_database_url(location):
        con = database.connect(location)
        try:
            yield CatalogTables(con, None, "the database")
        finally:
            con.disconnect()
    elif (catalog := spark_database(location)) is not None:
        if settings.engine != "spark":
            raise EngineError(f"{location} is a Spark catalog database: use --engine spark")
        yield CatalogTables(connect(settings), catalog, location)
    elif settings.engine == "spark":
        yield ParquetTables(connect(settings), location)
    else:
        with _duckdb() as con:
            yield ParquetTables(con, location)


@contextmanager
def _duckdb():
    """A DuckDB connection held to ``DUCKDB_MEMORY_LIMIT``, spilling to a scratch folder."""
    from features.engine import duckdb_connection

    scratch = Path(tempfile.mkdtemp(prefix="retain-validate-"))
    con = duckdb_connection()
    try:
        con.raw_sql(f"SET temp_directory = '{scratch}'")
        con.raw_sql(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        yield con
    finally:
        con.disconnect()
        shutil.rmtree(scratch, ignore_errors=True)


class ParquetTables:
    """A warehouse directory: types from each part's footer, the tables as views (DuckDB) or
    parquet reads (Spark) over all their parts."""

    def __init__(self, con, warehouse: Path) -> None:
        self.con, self.warehouse = con, Path(warehouse)

    def absent(self, table: str) -> str | None:
        if table_files(self.warehouse, table):
            return None
        return f"{table}.parquet or {table}/*.parquet"

    def parts(self, table: str, columns) -> Iterator[Part]:
        for path in table_files(self.warehouse, table):
            try:
                footer = pq.ParquetFile(path)
                fields = footer.schema_arrow
            except (OSError, arrow.ArrowException) as error:
                message = f"{path.name}: {str(error).splitlines()[0]}"
                yield Part(path.name, None, lambda: 1, message)
                continue
            schema = {f.name: _ibis_type(f.type) for f in fields if f.name in columns}
            yield Part(path.name, schema, lambda rows=footer.metadata.num_rows: rows)

    def ibis_tables(self, sound: dict[str, set[str]]) -> tuple[list[Violation], dict]:
        if self.con.name == "duckdb":
            return parquet_tables(self.con, self.warehouse, sound)
        violations, tables = [], {}
        for table, columns in sound.items():
            if not columns:
                continue
            try:  # Spark: parts whose types differ are merged where Spark can; a view of
                # its own name, never one that would hide a catalog's table of the session
                tables[table] = self.con.read_parquet(
                    table_glob(self.warehouse, table), mergeSchema="true"
                )
            except BACKEND_ERRORS as error:
                first = str(error).splitlines()[0]
                violations.append(Violation(table, "*", "readable as one table", 0, [first]))
        return violations, tables

    def keys_rise(self, table: str, key: tuple[str, ...]) -> bool:
        """Whether the table's files prove ``key`` unique (``features.sources.key_order``)."""
        return keys_rise(table_files(self.warehouse, table), key)

    def meta_as_of(self) -> date | str | None:
        try:
            return read_meta(self.warehouse).get("as_of")
        except ValueError:  # malformed metadata: fall back to the data
            return None


class CatalogTables:
    """The tables of a database (PostgreSQL) or of a Spark catalog database: types from the
    catalogue, one part per table."""

    def __init__(self, con, catalog: str | None, where: str) -> None:
        self.con, self.catalog, self.where = con, catalog, where
        self.present = set(con.list_tables(database=catalog))

    def absent(self, table: str) -> str | None:
        return None if table in self.present else f"table {table} in {self.where}"

    def parts(self, table: str, columns) -> Iterator[Part]:
        try:
            expr = self._table(table)
            schema = {name: kind for name, kind in expr.schema().items() if name in columns}
        except BACKEND_ERRORS as error:
            message = f"{table}: {str(error).splitlines()[0]}"
            yield Part(table, None, lambda: 1, message, "readable table")
            return
        yield Part(f"table {table}", schema, lambda: int(expr.count().execute()))

    def ibis_tables(self, sound: dict[str, set[str]]) -> tuple[list[Violation], dict]:
        return [], {table: self._table(table) for table, columns in sound.items() if columns}

    keys_rise = None  # the engine proves a key from the rows in the order it reads them

    def meta_as_of(self) -> None:
        return None  # a database has no generator metadata

    def _table(self, table: str) -> ir.Table:
        if self.catalog is None:
            return self.con.table(table)
        return self.con.table(table, database=self.catalog)


def _ibis_type(kind: arrow.DataType) -> dt.DataType:
    """The Ibis type of a parquet column, as every engine reads it; ``unknown`` for a type
    Ibis has no name for (reported as a wrong type)."""
    try:
        return dt.DataType.from_pyarrow(kind)
    except (NotImplementedError, TypeError, ValueError, KeyError):
        return dt.unknown
