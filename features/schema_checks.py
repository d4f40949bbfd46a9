"""Checks that need a whole table at once: keys, foreign keys, overlaps, date ranges and
activity dated before the customer opened.

Each check is an Ibis expression selecting the rows that break its rule, so one set of checks
runs on whichever backend holds the warehouse: DuckDB views over the parquet parts of a
directory, or the tables of a PostgreSQL database. Nothing is loaded into pandas but the count
and up to five example keys per rule. ``features.schema.validate_warehouse`` is the entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import reduce
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import psycopg
from ibis.common.exceptions import IbisError

from features.sources.files import CUSTOMER_TABLES, LIST_ASSIGNMENTS, table_glob

MAX_EXAMPLES = 5
EARLIEST_DATE = date(1900, 1, 1)
OPEN_END = date(9999, 12, 31)
# What a backend raises for a query it cannot run; reported as a violation, never raised.
BACKEND_ERRORS = (IbisError, duckdb.Error, psycopg.Error)

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
    LIST_ASSIGNMENTS: ("customer_id", "cutoff"),
}

# (table, column, referenced table, referenced column); a table's checks run in this order
FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("rms", "outlet_id", "org", "outlet_id"),
    ("customers", "outlet_id", "org", "outlet_id"),
    *((t, "customer_id", "customers", "customer_id") for t in CUSTOMER_TABLES if t != "customers"),
    ("rm_assignments", "rm_id", "rms", "rm_id"),
    ("balances", "product", "products", "product"),
    ("interactions", "rm_id", "rms", "rm_id"),
    (LIST_ASSIGNMENTS, "customer_id", "customers", "customer_id"),
)

DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("birth_date", "open_date"),
    "rm_assignments": ("valid_from", "valid_to"),
    "balances": ("month", "maturity_date"),
    "transactions": ("ts",),
    "interactions": ("ts",),
    "complaints": ("ts", "resolved_ts"),
    LIST_ASSIGNMENTS: ("cutoff",),
}
# (table, date column) of a customer's activity: none may come before the customer opened —
# an event before ``customers.open_date``, a month of balances before the month it falls in.
ACTIVITY_DATES: tuple[tuple[str, str], ...] = (
    ("balances", "month"),
    ("transactions", "ts"),
    ("interactions", "ts"),
    ("complaints", "ts"),
    (LIST_ASSIGNMENTS, "cutoff"),
)
MONTHLY_DATES = {"month", "cutoff"}  # month-end dates: compared with the opening month
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


Tables = Mapping[str, ir.Table]


@dataclass(frozen=True)
class Check:
    """A rule whose violating rows ``bad_rows`` selects, with one ``example`` string per row."""

    table: str
    column: str
    rule: str
    needs: tuple[tuple[str, str], ...]
    bad_rows: Callable[[Tables], ir.Table]


def relational_violations(
    tables: Tables, sound: Mapping[str, set[str]], as_of: date | None
) -> list[Violation]:
    """Run every relational check whose columns are ``sound`` (present and well typed).

    ``tables`` are the warehouse's tables as Ibis expressions on one backend; ``sound`` maps a
    table to the columns that every part holds with the right dtype. Checks on anything else
    are skipped because the per-part schema already reports the cause.
    """
    checks = [
        *unique_key_checks(),
        *foreign_key_checks(),
        overlapping_assignments_check(),
        *date_range_checks(as_of),
        *before_opening_checks(),
    ]
    violations = []
    for check in checks:
        if all(
            table in tables and column in sound.get(table, set()) for table, column in check.needs
        ):
            violation = _run(tables, check)
            if violation is not None:
                violations.append(violation)
    return violations


def parquet_tables(
    con, warehouse: Path, sound: Mapping[str, set[str]]
) -> tuple[list[Violation], dict[str, ir.Table]]:
    """A DuckDB view per table over all its parts; those DuckDB could not make are violations."""
    violations, tables = [], {}
    for table, columns in sound.items():
        if not columns:
            continue
        glob = table_glob(warehouse, table).replace("'", "''")
        try:
            con.raw_sql(
                f'CREATE VIEW "{table}" AS '
                f"SELECT * FROM read_parquet('{glob}', union_by_name = true)"
            )
            tables[table] = con.table(table)
        except BACKEND_ERRORS as error:  # e.g. parts whose column types cannot be reconciled
            violations.append(
                Violation(table, "*", "readable as one table", 0, [_first_line(error)])
            )
    return violations, tables


def unique_key_checks() -> Iterator[Check]:
    """Each key value appears once; ``count`` is the number of repeated key values."""
    for table, key in KEYS.items():

        def repeated(tables: Tables, table=table, key=key) -> ir.Table:
            counted = tables[table].group_by(list(key)).aggregate(rows=ibis._.count())
            repeats = counted.filter(counted.rows > 1)
            return repeats.select(example=_example(repeats, key))

        columns = ", ".join(key)
        yield Check(
            table,
            columns,
            f"unique key ({columns})",
            tuple((table, column) for column in key),
            repeated,
        )


def foreign_key_checks() -> Iterator[Check]:
    """Every non-null reference points at an existing row of the referenced table."""
    for table, column, parent, parent_column in FOREIGN_KEYS:
        shown = _with_key(table, column)

        def orphans(
            tables: Tables,
            table=table,
            column=column,
            parent=parent,
            parent_column=parent_column,
            shown=shown,
        ) -> ir.Table:
            rows, referenced = tables[table], tables[parent]
            _require_same_kind(rows[column], referenced[parent_column], f"{parent}.{parent_column}")
            known = referenced.select(reference=referenced[parent_column])
            present = rows.filter(rows[column].notnull())
            missing = present.anti_join(known, present[column] == known.reference)
            return missing.select(example=_example(missing, shown))

        yield Check(
            table,
            column,
            f"foreign key → {parent}.{parent_column}",
            (*((table, c) for c in shown), (parent, parent_column)),
            orphans,
        )


def overlapping_assignments_check() -> Check:
    """No assignment starts before an earlier one of the same customer has ended."""

    def overlapping(tables: Tables) -> ir.Table:
        rows = tables["rm_assignments"]
        earlier = ibis.window(
            group_by=rows.customer_id, order_by=[rows.valid_from, rows.valid_to], rows=(None, -1)
        )
        ends = rows.select(
            rows.customer_id,
            rows.valid_from,
            earlier_end=rows.valid_to.fill_null(ibis.date(OPEN_END)).max().over(earlier),
        )
        overlaps = ends.filter(ends.valid_from < ends.earlier_end)
        return overlaps.select(example=_example(overlaps, ("customer_id", "valid_from")))

    return Check(
        "rm_assignments",
        "valid_from, valid_to",
        "no overlapping assignments per customer",
        (
            ("rm_assignments", "customer_id"),
            ("rm_assignments", "valid_from"),
            ("rm_assignments", "valid_to"),
        ),
        overlapping,
    )


def date_range_checks(as_of: date | None) -> Iterator[Check]:
    """No date before 1900-01-01 and, when ``as_of`` is known, none after it.

    A timestamp is after ``as_of`` from midnight of the following day on.
    """
    for table, columns in DATE_COLUMNS.items():
        for column in columns:
            shown = _with_key(table, column)
            needs = tuple((table, c) for c in shown)
            yield Check(
                table,
                column,
                f"not before {EARLIEST_DATE}",
                needs,
                _dated(table, column, shown, lambda values, day: values < day, EARLIEST_DATE),
            )
            if as_of is not None and (table, column) not in MAY_FOLLOW_AS_OF:
                first_day_after = 2 if (table, column) in EXCLUSIVE_ENDS else 1
                yield Check(
                    table,
                    column,
                    f"not after as_of {as_of}",
                    needs,
                    _dated(
                        table,
                        column,
                        shown,
                        lambda values, day: values >= day,
                        as_of + timedelta(days=first_day_after),
                    ),
                )


def _dated(table: str, column: str, shown: tuple[str, ...], breaks, day: date):
    """Rows whose ``column`` ``breaks`` the rule against ``day`` (midnight, for a timestamp)."""

    def bad_rows(tables: Tables) -> ir.Table:
        rows = tables[table]
        values = rows[column]
        bound = (
            ibis.timestamp(datetime.combine(day, datetime.min.time()))
            if values.type().is_timestamp()
            else ibis.date(day)
        )
        bad = rows.filter(breaks(values, bound))
        return bad.select(example=_example(bad, shown))

    return bad_rows


def before_opening_checks() -> Iterator[Check]:
    """No activity before the customer opened: an event from midnight of ``open_date`` on, a
    month of balances from the month of ``open_date`` on (its month-end is on or after it).

    A customer listed twice opened at the earlier date (the repeat is reported as a key); rows
    whose customer is unknown, or whose ids differ in kind from customers', are the foreign
    key check's to report.
    """
    for table, column in ACTIVITY_DATES:
        key = _with_key(table, column)
        own = key if "customer_id" in key else (*key, "customer_id")
        monthly = column in MONTHLY_DATES
        yield Check(
            table,
            column,
            "not before the month of customers.open_date"
            if monthly
            else "not before customers.open_date",
            (*((table, c) for c in own), ("customers", "customer_id"), ("customers", "open_date")),
            _before_opening(table, column, own, monthly),
        )


def _before_opening(table: str, column: str, own: tuple[str, ...], monthly: bool):
    """Rows of ``table`` dated by ``column`` before their customer opened (``monthly``: the
    opening month)."""

    def bad_rows(tables: Tables) -> ir.Table:
        rows, customers = tables[table].select(*own), tables["customers"]
        if not _same_kind(rows.customer_id, customers.customer_id):
            return rows.filter(ibis.literal(False)).select(example=ibis.literal(""))
        opened = customers.group_by(opened_id=customers.customer_id).aggregate(
            open_date=customers.open_date.min()
        )
        joined = rows.join(opened, rows.customer_id == opened.opened_id)
        when, since = joined[column], joined.open_date
        if monthly:
            early = _month_number(when) < _month_number(since)
        else:
            early = when < since.cast("timestamp")
        bad = joined.filter(early)
        return bad.select(example=_example(bad, (*own, "open_date")))

    return bad_rows


def _month_number(day: ir.DateValue) -> ir.IntegerValue:
    return day.year() * 12 + day.month()


def _run(tables: Tables, check: Check) -> Violation | None:
    try:
        bad = check.bad_rows(tables)
        count = int(bad.count().execute())
        examples = (
            bad.order_by("example").limit(MAX_EXAMPLES).example.to_pyarrow().to_pylist()
            if count
            else []
        )
    except BACKEND_ERRORS as error:  # report, never raise
        rule = f"could not check {check.rule}"
        return Violation(check.table, check.column, rule, 0, [_first_line(error)])
    if count == 0:
        return None
    return Violation(check.table, check.column, check.rule, count, examples)


def _require_same_kind(column: ir.Column, referenced: ir.Column, name: str) -> None:
    """Integer ids cannot reference string ids (nor the reverse): say so plainly."""
    if not _same_kind(column, referenced):
        raise IbisError(f"{column.get_name()} is {column.type()} but {name} is {referenced.type()}")


def _same_kind(column: ir.Column, referenced: ir.Column) -> bool:
    kinds = {
        "integer" if c.type().is_integer() else "string" if c.type().is_string() else str(c.type())
        for c in (column, referenced)
    }
    return len(kinds) == 1


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0]


def _with_key(table: str, column: str) -> tuple[str, ...]:
    key = KEYS[table]
    return key if column in key else (*key, column)


def _example(rows: ir.Table, columns: tuple[str, ...]) -> ir.StringValue:
    """A row rendered as ``customer_id=17, month=2024-03-31`` (the same on every backend)."""
    parts = [ibis.literal(f"{c}=") + rows[c].cast("string").fill_null("null") for c in columns]
    return reduce(lambda left, right: left + ", " + right, parts)
