"""Pandera schemas for the input tables of docs/design.md §4, and ``validate_warehouse`` to
check them.

Dtypes, nulls, enums, ranges and row rules run with pandera on one parquet part (or, for a
database, one chunk of rows) at a time, so a 100M-row table never sits in memory whole; keys,
foreign keys, overlaps and date ranges need the whole table and run as Ibis expressions on
DuckDB or on the database (``features.schema_checks``). Every violation is reported at once and
a data problem never raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
import pyarrow.parquet as pq

from features.schema_checks import (
    BACKEND_ERRORS,
    KEYS,
    MAX_EXAMPLES,
    Violation,
    parquet_tables,
    relational_violations,
)
from features.sources import database
from features.sources.database import as_location, is_database_url
from features.sources.files import (
    INPUT_TABLES,
    LIST_ASSIGNMENTS,
    OPTIONAL_TABLES,
    WarehouseError,
    read_meta,
    table_files,
)

__all__ = ["SCHEMAS", "Violation", "validate_warehouse"]

TEXT, FLOAT, BOOL, DATE, TIMESTAMP = str, "float64", "boolean", pa.Date, pa.DateTime
# Read parquet ints and bools as pandas' nullable dtypes, so that a null is reported as a null
# rather than as an int column turned float.
NULLABLE_DTYPES = {arrow.int64(): pd.Int64Dtype(), arrow.bool_(): pd.BooleanDtype()}


# Counts and tiers may be stored at any integer width.
ANY_INTEGER = pa.Check(pd.api.types.is_integer_dtype, name="dtype integer")
# Ids are whatever the bank has: integers, or strings (core-banking numbers, leading zeros and
# all). They are never converted; a table whose ids differ in kind from customers' is reported
# by the relational checks.
ID_KIND = pa.Check(
    lambda ids: pd.api.types.is_integer_dtype(ids) or pd.api.types.is_string_dtype(ids),
    name="dtype integer or string",
)


def _column(dtype, *checks: pa.Check, nullable: bool = False) -> pa.Column:
    return pa.Column(dtype, list(checks), nullable=nullable)


def _one_of(*values: str) -> pa.Check:
    return pa.Check.isin(list(values))


def _at_least(bound: float) -> pa.Check:
    return pa.Check(lambda values: values >= bound, name=f">= {bound}")


def _above(bound: float) -> pa.Check:
    return pa.Check(lambda values: values > bound, name=f"> {bound}")


def _below(bound: float) -> pa.Check:
    return pa.Check(lambda values: values < bound, name=f"< {bound}")


MONTH_END = pa.Check(lambda days: pd.to_datetime(days).dt.is_month_end, name="month-end date")


def _valid_to_after_valid_from(frame: pd.DataFrame) -> pd.Series:
    valid_to = pd.to_datetime(frame["valid_to"])
    return valid_to.isna() | (valid_to > pd.to_datetime(frame["valid_from"]))


def _resolved_after_raised(frame: pd.DataFrame) -> pd.Series:
    return frame["resolved_ts"].isna() | (frame["resolved_ts"] >= frame["ts"])


# Rules comparing columns of one row, and the column a violation is reported under.
ROW_RULE_COLUMNS = {"valid_to > valid_from": "valid_to", "resolved_ts >= ts": "resolved_ts"}

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "org": pa.DataFrameSchema(
        {
            "outlet_id": _column(None, ID_KIND),
            "sub_branch_id": _column(None, ID_KIND),
            "branch_id": _column(None, ID_KIND),
            "city": _column(TEXT),
            "city_tier": _column(
                None, ANY_INTEGER, pa.Check(lambda t: t.between(1, 4), name="between 1 and 4")
            ),
        }
    ),
    "rms": pa.DataFrameSchema(
        {
            "rm_id": _column(None, ID_KIND),
            "outlet_id": _column(None, ID_KIND),
            "name": _column(TEXT),
            "capacity": _column(None, ANY_INTEGER, _above(0)),
        }
    ),
    "customers": pa.DataFrameSchema(
        {
            "customer_id": _column(None, ID_KIND),
            "name": _column(TEXT),
            "birth_date": _column(DATE),
            "gender": _column(TEXT, _one_of("F", "M")),
            "occupation": _column(TEXT),
            "education": _column(TEXT),
            "city": _column(TEXT),
            "outlet_id": _column(None, ID_KIND),
            "open_date": _column(DATE),
            "risk_profile": _column(TEXT, _one_of("C1", "C2", "C3", "C4", "C5")),
            "do_not_contact": _column(BOOL),
        }
    ),
    "rm_assignments": pa.DataFrameSchema(
        {
            "customer_id": _column(None, ID_KIND),
            "rm_id": _column(None, ID_KIND),
            "valid_from": _column(DATE),
            "valid_to": _column(DATE, nullable=True),
        },
        checks=[pa.Check(_valid_to_after_valid_from, name="valid_to > valid_from")],
    ),
    "products": pa.DataFrameSchema(
        {
            "product": _column(TEXT),
            "kind": _column(TEXT, _one_of("asset", "liability", "service")),
            "margin_rate": _column(FLOAT, _at_least(0)),
            "fee_per_year": _column(FLOAT, _at_least(0)),
        }
    ),
    "balances": pa.DataFrameSchema(
        {
            "customer_id": _column(None, ID_KIND),
            "month": _column(DATE, MONTH_END),
            "product": _column(TEXT),
            "avg_daily_balance": _column(FLOAT, _at_least(0)),
            "end_balance": _column(FLOAT, _at_least(0)),
            "status": _column(TEXT, _one_of("open", "closed")),
            "maturity_date": _column(DATE, nullable=True),
        }
    ),
    "transactions": pa.DataFrameSchema(
        {
            "txn_id": _column(None, ID_KIND),
            "customer_id": _column(None, ID_KIND),
            "ts": _column(TIMESTAMP),
            "amount": _column(FLOAT, _above(0)),
            "direction": _column(TEXT, _one_of("in", "out")),
            "channel": _column(TEXT, _one_of("counter", "atm", "mobile", "online")),
            "counterparty": _column(TEXT, _one_of("own", "other_bank", "merchant", "salary")),
        }
    ),
    "interactions": pa.DataFrameSchema(
        {
            "interaction_id": _column(None, ID_KIND),
            "customer_id": _column(None, ID_KIND),
            "rm_id": _column(None, ID_KIND),
            "ts": _column(TIMESTAMP),
            "kind": _column(TEXT, _one_of("call", "visit", "event", "message")),
            "outcome": _column(TEXT),
        }
    ),
    "complaints": pa.DataFrameSchema(
        {
            "complaint_id": _column(None, ID_KIND),
            "customer_id": _column(None, ID_KIND),
            "ts": _column(TIMESTAMP),
            "category": _column(TEXT),
            "resolved_ts": _column(TIMESTAMP, nullable=True),
        },
        checks=[pa.Check(_resolved_after_raised, name="resolved_ts >= ts")],
    ),
    # optional (docs/design.md §14): earlier campaigns' randomised assignments; p_treat is the known
    # probability of being put on a list — for "none" the probability it would have been
    # drawn — strictly between 0 and 1, or the row was never randomised
    LIST_ASSIGNMENTS: pa.DataFrameSchema(
        {
            "customer_id": _column(None, ID_KIND),
            "cutoff": _column(DATE, MONTH_END),
            "list_id": _column(None, ID_KIND),
            "group": _column(TEXT, _one_of("treated", "control", "explore", "none")),
            "p_treat": _column(FLOAT, _above(0), _below(1)),
            "rank": _column(None, ANY_INTEGER, _at_least(1)),
        }
    ),
}


def validate_warehouse(warehouse: Path | str, as_of: date | None = None) -> list[Violation]:
    """Check every input table of a warehouse and return all violations, grouped by table.

    Parameters
    ----------
    warehouse : Path or str
        Directory holding the tables of docs/design.md §4 (``<table>.parquet`` or
        ``<table>/*.parquet``), or the URL of a database holding them
        (``postgres://user@host:port/db``). Optional tables (``list_assignments``) are checked
        when present and never missed.
    as_of : date, optional
        No date may follow it. Defaults to ``as_of`` in the warehouse's ``_meta.json``, else the
        latest ``month`` in balances; without either, only the 1900-01-01 floor is checked.

    Returns
    -------
    list[Violation]
        Empty for a clean warehouse. ``count`` is the number of rows breaking the rule (keys,
        for a unique key; parts, for an unreadable file); missing tables, unreadable files,
        missing columns and wrong dtypes are violations too. A directory and a database holding
        the same rows report the same violations: the schemas run on parquet parts or on chunks
        of rows, the relational checks are the same Ibis expressions on DuckDB or the database.

    Raises
    ------
    WarehouseError
        For a location that is neither (``spark://DB``): there is nothing to validate there yet.
    """
    location = as_location(warehouse)
    if isinstance(location, str) and not is_database_url(location):
        raise WarehouseError(
            f"cannot validate {location}: validation runs on a warehouse directory or a "
            "postgres:// database"
        )
    if is_database_url(location):
        con = database.connect(location)
        try:
            return _validate(DatabaseTables(con), as_of)
        finally:
            con.disconnect()
    from features.engine import duckdb_connection  # engine reads tables this module checks

    con = duckdb_connection()
    try:
        return _validate(ParquetTables(con, location), as_of)
    finally:
        con.disconnect()


class ParquetTables:
    """The tables of a warehouse directory: pandas per parquet part, Ibis over DuckDB views."""

    def __init__(self, con, warehouse: Path) -> None:
        self.con, self.warehouse = con, Path(warehouse)

    def absent(self, table: str) -> str | None:
        if table_files(self.warehouse, table):
            return None
        return f"{table}.parquet or {table}/*.parquet"

    def parts(self, table: str) -> Iterator[tuple[str, pd.DataFrame | Violation]]:
        """(part name, its rows with the schema's columns it has, or why it cannot be read)."""
        columns = SCHEMAS[table].columns
        for path in table_files(self.warehouse, table):
            try:
                present = set(pq.read_schema(path).names)
                frame = pq.read_table(path, columns=[c for c in columns if c in present])
            except (OSError, arrow.ArrowException) as error:
                message = f"{path.name}: {str(error).splitlines()[0]}"
                yield path.name, Violation(table, "*", "readable parquet", 1, [message])
                continue
            yield path.name, frame.to_pandas(types_mapper=NULLABLE_DTYPES.get)

    def ibis_tables(self, sound: dict[str, set[str]]) -> tuple[list[Violation], dict]:
        return parquet_tables(self.con, self.warehouse, sound)

    def meta_as_of(self) -> date | None:
        try:
            return _as_date(read_meta(self.warehouse).get("as_of"))
        except ValueError:  # malformed metadata: fall back to the data
            return None


class DatabaseTables:
    """The tables of a database: pandas per chunk of rows, Ibis on the database itself."""

    def __init__(self, con, chunk_rows: int = database.CHUNK_ROWS) -> None:
        self.con, self.chunk_rows = con, chunk_rows
        self.present = set(database.list_tables(con))

    def absent(self, table: str) -> str | None:
        return None if table in self.present else f"table {table} in the database"

    def parts(self, table: str) -> Iterator[tuple[str, pd.DataFrame | Violation]]:
        """(rows first–last, their schema columns) for each chunk, or why it cannot be read."""
        try:
            present = set(self.con.table(table).columns)
            columns = [c for c in SCHEMAS[table].columns if c in present]
            first = 0
            for frame in database.read_chunks(
                self.con, table, columns, self.chunk_rows, NULLABLE_DTYPES.get
            ):
                yield f"{table} rows {first}–{first + len(frame) - 1}", frame
                first += len(frame)
        except BACKEND_ERRORS as error:
            message = f"{table}: {str(error).splitlines()[0]}"
            yield table, Violation(table, "*", "readable table", 1, [message])

    def ibis_tables(self, sound: dict[str, set[str]]) -> tuple[list[Violation], dict]:
        return [], {table: self.con.table(table) for table, columns in sound.items() if columns}

    def meta_as_of(self) -> date | None:
        return None  # a database has no generator metadata


ALL_TABLES = (*INPUT_TABLES, *OPTIONAL_TABLES)


def _validate(source: ParquetTables | DatabaseTables, as_of: date | None) -> list[Violation]:
    violations: list[Violation] = []
    sound: dict[str, set[str]] = {}
    for table in ALL_TABLES:
        where = source.absent(table)
        if where is not None:
            if table not in OPTIONAL_TABLES:  # an optional table may be absent
                violations.append(Violation(table, "*", "table present", 1, [where]))
            continue
        unsound: set[str] = set()
        found: list[Violation] = []
        for name, frame in source.parts(table):
            part_violations, part_unsound = _validate_part(table, name, frame)
            found += part_violations
            unsound |= part_unsound
        violations += _merge(found)
        sound[table] = set(SCHEMAS[table].columns) - unsound
    unreadable, tables = source.ibis_tables(sound)
    violations += unreadable
    as_of = _as_date(as_of) or source.meta_as_of() or _latest_month(tables, sound)
    violations += relational_violations(tables, sound, as_of)
    return sorted(violations, key=lambda violation: ALL_TABLES.index(violation.table))


def _validate_part(
    table: str, name: str, frame: pd.DataFrame | Violation
) -> tuple[list[Violation], set[str]]:
    """Violations in one part (a parquet file or a chunk of rows), and the columns it lacks or
    holds with a wrong dtype; ``frame`` is already a violation when the part is unreadable."""
    schema = SCHEMAS[table]
    if isinstance(frame, Violation):
        return [frame], set(schema.columns)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = _failures(errors.failure_cases)
    else:
        return [], set()
    structural = cases["rule"].eq("column present") | cases["rule"].str.startswith("dtype ")
    unsound = set(cases.loc[structural, "column"])
    if unsound:  # checks that crashed on a missing or mistyped column add nothing
        cases = cases[structural | cases["index"].notna()]
    violations = []
    for (column, rule), group in cases.groupby(["column", "rule"], sort=False):
        rows = [int(row) for row in group["index"].dropna().unique()]
        if len(rows):
            examples = _describe_rows(frame, rows[:MAX_EXAMPLES], KEYS[table], name)
            violations.append(Violation(table, column, rule, len(rows), examples))
        else:  # the whole part: a missing or mistyped column, or a check that crashed
            example = _describe_part(frame, column, rule, group["failure_case"].iloc[0], name)
            violations.append(Violation(table, column, rule, len(frame), [example]))
    return violations, unsound


def _describe_part(frame: pd.DataFrame, column: str, rule: str, failure: str, name: str) -> str:
    if rule == "column present":
        return name
    if rule.startswith("dtype ") and column in frame:
        return f"{name}: found {frame[column].dtype}"
    return f"{name}: {failure}"


def _failures(failure_cases: pd.DataFrame) -> pd.DataFrame:
    """Pandera's failure cases as (column, rule, index, failure_case) in a data engineer's words."""
    check = failure_cases["check"].astype(str)
    column = failure_cases["column"].astype(object)
    column = column.where(check != "column_in_dataframe", failure_cases["failure_case"])
    column = column.where(~check.isin(ROW_RULE_COLUMNS), check.map(ROW_RULE_COLUMNS))
    return pd.DataFrame(
        {
            "column": column.fillna("*").astype(str),
            "rule": check.map(_rule),
            "index": failure_cases["index"],
            "failure_case": failure_cases["failure_case"].astype(str),
        }
    )


def _rule(check: str) -> str:
    if check == "column_in_dataframe":
        return "column present"
    if check == "not_nullable":
        return "not null"
    if check.startswith("dtype("):
        dtype = check.removeprefix("dtype(").removesuffix(")").strip("'")
        readable = {
            "Int64": "int64",
            "boolean": "bool",
            "str": "string",
            "string[pyarrow]": "string",
            "datetime64[ns]": "timestamp",
        }
        return f"dtype {readable.get(dtype, dtype)}"
    return check


def _describe_rows(frame: pd.DataFrame, rows, key: tuple[str, ...], name: str) -> list[str]:
    """Render rows as their key (``customer_id=17, month=2024-03-31``)."""
    shown = [column for column in key if column in frame.columns]
    if not shown:
        return [f"{name} row {row}" for row in rows]
    return [", ".join(f"{column}={frame.at[row, column]}" for column in shown) for row in rows]


def _merge(violations: list[Violation]) -> list[Violation]:
    """Add up the violations of a table's parts that break the same rule on the same column."""
    merged: dict[tuple[str, str, str], Violation] = {}
    for violation in violations:
        key = (violation.table, violation.column, violation.rule)
        if key in merged:
            earlier = merged[key]
            examples = (earlier.examples + violation.examples)[:MAX_EXAMPLES]
            violation = Violation(*key, earlier.count + violation.count, examples)
        merged[key] = violation
    return list(merged.values())


def _latest_month(tables: dict, sound: dict[str, set[str]]) -> date | None:
    """The latest ``month`` in balances, or None when balances cannot tell."""
    if "balances" not in tables or "month" not in sound.get("balances", set()):
        return None  # reported by the table checks
    try:
        return _as_date(tables["balances"].month.max().execute())
    except BACKEND_ERRORS:
        return None


def _as_date(value: object) -> date | None:
    """A date from a date, a datetime or an ISO string (``2024-12-31``); None otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value if isinstance(value, date) else None
