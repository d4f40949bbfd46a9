"""Checks that need a whole table at once: keys, foreign keys, overlaps and date ranges.

They run as DuckDB SQL over the parquet globs of a warehouse, so no table is loaded into pandas;
each check returns how many rows (or keys) break its rule and up to five example keys.
``features.schema.validate_warehouse`` is the entry point that runs them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from features.sources.files import table_glob

MAX_EXAMPLES = 5
EARLIEST_DATE = date(1900, 1, 1)

KEYS: dict[str, tuple[str, ...]] = {
    "org": ("outlet_id",),
    "rms": ("rm_id",),
    "customers": ("customer_id",),
    "rm_assignments": ("customer_id", "valid_from"),
    "products": ("product",),
    "balances": ("customer_id", "month", "product"),
    "transactions": ("txn_id",),
    "interactions": ("interaction_id",),
    "complaints": ("complaint_id",),
}

# (table, column, referenced table, referenced column)
FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("rms", "outlet_id", "org", "outlet_id"),
    ("customers", "outlet_id", "org", "outlet_id"),
    ("rm_assignments", "customer_id", "customers", "customer_id"),
    ("rm_assignments", "rm_id", "rms", "rm_id"),
    ("balances", "customer_id", "customers", "customer_id"),
    ("balances", "product", "products", "product"),
    ("transactions", "customer_id", "customers", "customer_id"),
    ("interactions", "customer_id", "customers", "customer_id"),
    ("interactions", "rm_id", "rms", "rm_id"),
    ("complaints", "customer_id", "customers", "customer_id"),
)

DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("birth_date", "open_date"),
    "rm_assignments": ("valid_from", "valid_to"),
    "balances": ("month", "maturity_date"),
    "transactions": ("ts",),
    "interactions": ("ts",),
    "complaints": ("ts", "resolved_ts"),
}
# A deposit may mature after the cutoff; an assignment that ran through as_of ends (exclusive)
# on the day after it.
MAY_FOLLOW_AS_OF = {("balances", "maturity_date")}
EXCLUSIVE_ENDS = {("rm_assignments", "valid_to")}


@dataclass(frozen=True)
class Violation:
    """``count`` rows (or keys) of ``table.column`` break ``rule``; ``examples`` show up to 5."""

    table: str
    column: str
    rule: str
    count: int
    examples: list[str]


@dataclass(frozen=True)
class SqlCheck:
    """A rule whose violating rows ``bad_rows`` selects, one ``example`` string per row."""

    table: str
    column: str
    rule: str
    needs: tuple[tuple[str, str], ...]
    bad_rows: str


def relational_violations(
    warehouse: Path, sound: Mapping[str, set[str]], as_of: date | None
) -> list[Violation]:
    """Run every relational check whose columns are ``sound`` (present and well typed).

    ``sound`` maps a table to the columns that every part holds with the right dtype; checks on
    anything else are skipped because the per-part schema already reports the cause.
    """
    checks = [
        *unique_key_checks(),
        *foreign_key_checks(),
        overlapping_assignments_check(),
        *date_range_checks(as_of),
    ]
    with duckdb.connect() as con:
        violations, readable = _create_views(con, warehouse, sound)
        for check in checks:
            if all(column in readable.get(table, set()) for table, column in check.needs):
                violation = _run(con, check)
                if violation is not None:
                    violations.append(violation)
    return violations


def _create_views(
    con: duckdb.DuckDBPyConnection, warehouse: Path, sound: Mapping[str, set[str]]
) -> tuple[list[Violation], dict[str, set[str]]]:
    """A view per table over all its parts; the sound columns of tables DuckDB can read."""
    violations, readable = [], {}
    for table, columns in sound.items():
        if not columns:
            continue
        glob = table_glob(warehouse, table).replace("'", "''")
        try:
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', union_by_name = true)"
            )
        except duckdb.Error as error:  # e.g. parts whose column types cannot be reconciled
            violations.append(
                Violation(table, "*", "readable as one table", 0, [_first_line(error)])
            )
            continue
        readable[table] = columns
    return violations, readable


def unique_key_checks() -> Iterator[SqlCheck]:
    """Each key value appears once; ``count`` is the number of repeated key values."""
    for table, key in KEYS.items():
        columns = ", ".join(key)
        yield SqlCheck(
            table,
            columns,
            f"unique key ({columns})",
            tuple((table, column) for column in key),
            f"SELECT {_example(key)} AS example FROM {table} "
            f"GROUP BY {columns} HAVING count(*) > 1",
        )


def foreign_key_checks() -> Iterator[SqlCheck]:
    """Every non-null reference points at an existing row of the referenced table."""
    for table, column, parent, parent_column in FOREIGN_KEYS:
        shown = _with_key(table, column)
        yield SqlCheck(
            table,
            column,
            f"foreign key → {parent}.{parent_column}",
            (*((table, c) for c in shown), (parent, parent_column)),
            f"SELECT {_example(shown)} AS example FROM {table} WHERE {column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {parent} AS p "
            f"WHERE p.{parent_column} = {table}.{column})",
        )


def overlapping_assignments_check() -> SqlCheck:
    """No assignment starts before an earlier one of the same customer has ended."""
    shown = ("customer_id", "valid_from")
    return SqlCheck(
        "rm_assignments",
        "valid_from, valid_to",
        "no overlapping assignments per customer",
        (
            ("rm_assignments", "customer_id"),
            ("rm_assignments", "valid_from"),
            ("rm_assignments", "valid_to"),
        ),
        f"SELECT {_example(shown)} AS example FROM ("
        "  SELECT customer_id, valid_from, max(coalesce(valid_to, DATE '9999-12-31')) OVER ("
        "    PARTITION BY customer_id ORDER BY valid_from, valid_to"
        "    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_end"
        "  FROM rm_assignments)"
        " WHERE valid_from < earlier_end",
    )


def date_range_checks(as_of: date | None) -> Iterator[SqlCheck]:
    """No date before 1900-01-01 and, when ``as_of`` is known, none after it.

    A timestamp is after ``as_of`` from midnight of the following day on.
    """
    for table, columns in DATE_COLUMNS.items():
        for column in columns:
            shown = _with_key(table, column)
            needs = tuple((table, c) for c in shown)
            select = f"SELECT {_example(shown)} AS example FROM {table} WHERE {column}"
            yield SqlCheck(
                table,
                column,
                f"not before {EARLIEST_DATE}",
                needs,
                f"{select} < DATE '{EARLIEST_DATE}'",
            )
            if as_of is not None and (table, column) not in MAY_FOLLOW_AS_OF:
                first_day_after = 2 if (table, column) in EXCLUSIVE_ENDS else 1
                yield SqlCheck(
                    table,
                    column,
                    f"not after as_of {as_of}",
                    needs,
                    f"{select} >= DATE '{as_of}' + {first_day_after}",
                )


def _run(con: duckdb.DuckDBPyConnection, check: SqlCheck) -> Violation | None:
    try:
        count, examples = con.execute(
            f"SELECT count(*), min(example, {MAX_EXAMPLES}) FROM ({check.bad_rows})"
        ).fetchone()
    except duckdb.Error as error:  # report, never raise
        rule = f"could not check {check.rule}"
        return Violation(check.table, check.column, rule, 0, [_first_line(error)])
    if count == 0:
        return None
    return Violation(check.table, check.column, check.rule, count, list(examples))


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0]


def _with_key(table: str, column: str) -> tuple[str, ...]:
    key = KEYS[table]
    return key if column in key else (*key, column)


def _example(columns: tuple[str, ...]) -> str:
    """SQL rendering a row as ``customer_id=17, month=2024-03-31``."""
    parts = [f"'{c}=' || coalesce(CAST({c} AS VARCHAR), 'null')" for c in columns]
    return " || ', ' || ".join(parts)
