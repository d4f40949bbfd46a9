"""A warehouse in a PostgreSQL database: recognise its URL, connect, list and read its tables.

The tables are those of docs/design.md §4 under the same names (``customers``, ``balances``, …),
in the database's search path (``postgres://user@host:port/db`` or ``…/db/schema`` for another
schema). The Ibis connection is the PostgreSQL backend itself, so features run in PostgreSQL.
``load_parquet_into`` copies a warehouse directory into such a database (tests, demos, a first
migration).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import pandas as pd
import pyarrow as arrow
import pyarrow.csv as arrow_csv
import pyarrow.parquet as pq
from ibis.backends.sql.compilers.postgres import PostgresCompiler

from features.sources.files import (
    INPUT_TABLES,
    OPTIONAL_TABLES,
    TRUTH_TABLE,
    WarehouseError,
    table_files,
)

DATABASE_SCHEMES = ("postgres", "postgresql")
CHUNK_ROWS = 200_000
# A Path made from a URL collapses its "//" (postgres:/user@host/db); undo that.
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*):/+(?P<rest>.*)$", re.IGNORECASE)


def as_location(location: str | Path) -> str | Path:
    """A database URL as a string (``scheme://…``), anything else as a directory Path."""
    match = _URL.match(str(location))
    if match and match["scheme"].lower() in (*DATABASE_SCHEMES, "spark"):
        return f"{match['scheme'].lower()}://{match['rest']}"
    return Path(location)


def is_database_url(location: str | Path) -> bool:
    """True for ``postgres://…`` and ``postgresql://…`` (a Path made from one included)."""
    match = _URL.match(str(location))
    return bool(match) and match["scheme"].lower() in DATABASE_SCHEMES


class _PostgresCompiler(PostgresCompiler):
    """Ibis' PostgreSQL compiler, plus the one cast the feature code needs that PostgreSQL lacks:
    a boolean casts to ``integer`` only, so boolean → bigint goes through integer."""

    def visit_Cast(self, op, *, arg, to):
        if op.arg.dtype.is_boolean() and to.is_integer() and not to.is_int32():
            arg = self.cast(arg, dt.int32)
        return super().visit_Cast(op, arg=arg, to=to)


_COMPILER = _PostgresCompiler()


def connect(url: str | Path):
    """The Ibis PostgreSQL backend for ``url``; :class:`WarehouseError` naming the database
    (not its password) when it cannot be reached."""
    try:
        con = ibis.connect(str(as_location(url)))
    except Exception as exc:  # no server, a refused connection, a wrong password or database
        line = next((t.strip() for t in str(exc).splitlines() if t.strip()), type(exc).__name__)
        raise WarehouseError(f"cannot connect to {safe_url(str(url))}: {line}") from exc
    con.compiler = _COMPILER
    return con


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


def list_tables(con) -> list[str]:
    """The tables (and views) the connection sees in its current schema."""
    return sorted(con.list_tables())


def read_chunks(
    con,
    table: str,
    columns: list[str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    types_mapper: Callable | None = None,
) -> Iterator[pd.DataFrame]:
    """Read ``table`` as pandas frames of at most ``chunk_rows`` rows (a server-side cursor).

    An empty table yields one empty frame, so that its columns and dtypes can still be checked.
    """
    expr = con.table(table)
    if columns is not None:
        expr = expr.select(*columns)
    reader = expr.to_pyarrow_batches(chunk_size=chunk_rows)
    empty = True
    for batch in reader:
        if batch.num_rows == 0:
            continue
        empty = False
        yield batch.to_pandas(types_mapper=types_mapper)
    if empty:
        yield reader.schema.empty_table().to_pandas(types_mapper=types_mapper)


def load_parquet_into(
    url: str | Path, warehouse: Path, tables: tuple[str, ...] | None = None
) -> dict[str, int]:
    """Copy the parquet tables of ``warehouse`` into the database at ``url``; rows per table.

    Each table present in the directory (the inputs of docs/design.md §4, optional ones
    included, and the truth table, unless ``tables`` names others) replaces a table of the same
    name, with the column types of its parquet files; rows go in through ``COPY``. Tables absent
    from the directory are left alone.
    """
    con = connect(url)
    try:
        loaded = {}
        for table in tables or (*INPUT_TABLES, *OPTIONAL_TABLES, TRUTH_TABLE):
            files = table_files(warehouse, table)
            if files:
                loaded[table] = _copy_table(con, table, files)
                # statistics for the planner: without them PostgreSQL guesses join sizes badly
                con.raw_sql(f'ANALYZE "{table}"').close()
        return loaded
    finally:
        con.disconnect()


def _copy_table(con, table: str, files: list[Path]) -> int:
    schema = arrow.unify_schemas(
        [pq.read_schema(f) for f in files], promote_options="permissive"
    ).remove_metadata()
    # (Ibis 12's overwrite=True renders an empty DROP TABLE on PostgreSQL, so drop by hand)
    con.raw_sql(f'DROP TABLE IF EXISTS "{table}"').close()
    con.con.commit()
    con.create_table(table, schema=ibis.Schema.from_pyarrow(schema))
    columns = ", ".join(f'"{name}"' for name in schema.names)
    options = arrow_csv.WriteOptions(include_header=False)
    rows = 0
    with con.con.cursor() as cursor, con.con.transaction():
        with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN WITH (FORMAT csv)') as copy:
            for path in files:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
                    batch = _conform(batch, schema)
                    # CSV quotes every string and leaves nulls unquoted: '' and null stay apart
                    buffer = io.BytesIO()
                    arrow_csv.write_csv(batch, buffer, options)
                    copy.write(buffer.getvalue())
                    rows += batch.num_rows
    return rows


def _conform(batch: arrow.RecordBatch, schema: arrow.Schema) -> arrow.RecordBatch:
    """``batch`` with the columns of ``schema``, in its order (nulls for a column it lacks)."""
    arrays = [
        batch.column(field.name).cast(field.type)
        if field.name in batch.schema.names
        else arrow.nulls(batch.num_rows, field.type)
        for field in schema
    ]
    return arrow.RecordBatch.from_arrays(arrays, schema=schema)
