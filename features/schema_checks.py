"""The checks of a warehouse, as Ibis expressions the engine computes: rules on one row at a
time (nulls, allowed values, ranges, month-ends, date ranges, one column against another), and
rules on a whole table or two (keys, foreign keys, overlaps, activity before the customer
opened).

One set of checks runs on whichever backend holds the warehouse: DuckDB views over the parquet
parts of a directory, the tables of a PostgreSQL database, or Spark. Row rules are counted in
one query per table: on DuckDB a filtered count per rule (the parquet scan skips the row groups
whose statistics rule out a break), elsewhere one aggregate (one scan, however many rules);
whole-table rules are aggregates and anti-joins. Nothing comes back to Python but a count and
up to five example keys per broken rule. ``features.schema.validate_warehouse`` is the entry point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
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
HASHING_BACKENDS = {"duckdb", "pyspark"}  # Ibis' hash() of a struct compiles on these

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
KeysRise = Callable[[str, tuple[str, ...]], bool]  # (table, key): proved not to repeat


@dataclass(frozen=True)
class Check:
    """A rule whose violating rows ``bad_rows`` selects, with one ``example`` string per row;
    ``holds``, when given, is a cheaper proof that the rule holds, tried first."""

    table: str
    column: str
    rule: str
    needs: tuple[tuple[str, str], ...]
    bad_rows: Callable[[Tables], ir.Table]
    holds: Callable[[Tables], bool] | None = None


@dataclass(frozen=True)
class RowCheck:
    """A rule on one row at a time: ``breaks`` is true for a row that breaks it (null, which
    never counts, where the values it reads are null); ``needs`` are the columns it reads and
    ``shown`` those an example shows (default: the table's key)."""

    table: str
    column: str
    rule: str
    needs: tuple[str, ...]
    breaks: Callable[[ir.Table], ir.BooleanValue]
    shown: tuple[str, ...] = ()


def row_violations(
    tables: Tables, sound: Mapping[str, set[str]], checks: Iterable[RowCheck]
) -> list[Violation]:
    """Run every row check whose columns are ``sound``: one query per table counts them all
    (``_counted``), then each broken rule's examples are fetched (a filter, sorted, five rows).

    ``tables`` are the warehouse's tables as Ibis expressions on one backend; ``sound`` maps a
    table to the columns that every part holds with the right dtype. Checks on anything else
    are skipped because the structural checks already report the cause.
    """
    runnable: dict[str, list[RowCheck]] = {}
    for check in checks:
        if check.table in tables and set(check.needs) <= sound.get(check.table, set()):
            runnable.setdefault(check.table, []).append(check)
    violations = []
    for table, table_checks in runnable.items():
        violations += _count_rows(tables[table], table_checks)
    return violations


def _count_rows(rows: ir.Table, checks: list[RowCheck]) -> list[Violation]:
    """The violations of ``checks`` on ``rows``, counted in one query (``_counted``).

    A NaN is a null, as pandas (and many a bank's export) writes a missing float. The largest
    value of each float column tells whether it holds one (NaN sorts above every number on
    every engine); only then are the rules counted again with its NaNs read as nulls.
    """
    floats = sorted({c for check in checks for c in check.needs if rows[c].type().is_floating()})
    try:
        counts = _counted(rows, checks, floats)
        with_nan = [c for c in floats if _is_nan(counts[f"max_{c}"])]
        if with_nan:
            rows = rows.mutate(**{c: _nan_as_null(rows[c]) for c in with_nan})
            counts = _counted(rows, checks, [])
    except BACKEND_ERRORS as error:  # report, never raise
        message = [_first_line(error)]
        return [
            Violation(c.table, c.column, f"could not check {c.rule}", 0, message) for c in checks
        ]
    violations = []
    for i, check in enumerate(checks):
        count = int(counts[f"rule_{i}"] or 0)  # an empty table sums to null
        if count:
            bad = rows.filter(check.breaks(rows))
            shown = tuple(c for c in check.shown or KEYS[check.table] if c in rows.columns)
            try:
                examples = _examples(bad.select(example=_example(bad, shown or (check.column,))))
            except BACKEND_ERRORS as error:
                examples = [_first_line(error)]
            violations.append(Violation(check.table, check.column, check.rule, count, examples))
    return violations


def _counted(rows: ir.Table, checks: list[RowCheck], floats: list[str]) -> dict:
    """Rows breaking each check (``rule_<i>``), the largest of each float (``max_<c>``).

    On DuckDB each rule is a count of its own over the rows that break it, all in one query:
    the filter goes into the parquet scan, which skips every row group whose statistics rule
    the rows out (no null there, all dates in range) and tests allowed values once per
    dictionary entry: 82M transactions checked in 0.7 s, against 3.3 s for one aggregate
    whose every row evaluates every rule. Elsewhere (PostgreSQL scans a table for each
    query; on Spark every query is a job) one aggregate counts them all.
    """
    if rows.get_backend().name == "duckdb" and checks:
        return _counted_apart(rows, checks, floats)
    counted = rows.aggregate(
        **{f"rule_{i}": ibis.ifelse(c.breaks(rows), 1, 0).sum() for i, c in enumerate(checks)},
        **{f"max_{c}": rows[c].max() for c in floats},
    )
    (counts,) = counted.to_pyarrow().to_pylist()
    return counts


def _counted_apart(rows: ir.Table, checks: list[RowCheck], floats: list[str]) -> dict:
    """``_counted`` as one count per rule (a union of filtered counts); the floats' largest
    values (a NaN sorts above every number; statistics leave NaN out, so these are read)."""
    parts = [
        rows.filter(check.breaks(rows))
        .aggregate(rows=ibis._.count())
        .mutate(rule=ibis.literal(i, "int64"))
        for i, check in enumerate(checks)
    ]
    counts = {
        f"rule_{row['rule']}": row["rows"] for row in ibis.union(*parts).to_pyarrow().to_pylist()
    }
    if floats:
        largest = rows.aggregate(**{f"max_{c}": rows[c].max() for c in floats})
        with _statistics_unread(rows.get_backend()):
            (values,) = largest.to_pyarrow().to_pylist()
        counts.update(values)
    return counts


@contextmanager
def _statistics_unread(con) -> Iterator[None]:
    """DuckDB computing from the rows what it would answer from the files' statistics,
    which leave NaN out: alone in its query, ``max`` of a float column came back as the
    footer's maximum, not NaN (duckdb 2.0)."""
    (before,) = con.raw_sql("SELECT current_setting('disabled_optimizers')").fetchall()[0]
    off = ",".join(dict.fromkeys(filter(None, [*before.split(","), "statistics_propagation"])))
    con.raw_sql(f"SET disabled_optimizers = '{off}'")
    try:
        yield
    finally:
        con.raw_sql(f"SET disabled_optimizers = '{before}'")


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _nan_as_null(values: ir.FloatingColumn) -> ir.FloatingColumn:
    """NaN as null. Read as text: DuckDB folds isnan() and comparisons with NaN to false from
    parquet statistics, which leave NaN out of their min and max (duckdb 2.0)."""
    text = values.cast("string").lower()
    return ibis.ifelse(text.isin(["nan", "-nan"]), ibis.null("float64"), values)


def relational_violations(
    tables: Tables, sound: Mapping[str, set[str]], keys_rise: KeysRise | None = None
) -> list[Violation]:
    """Run every whole-table check whose columns are ``sound`` (present and well typed):
    unique keys, foreign keys, overlapping assignments, activity before opening.
    ``keys_rise``: the source's own proof that a table's key does not repeat (its files)."""
    checks = [
        *unique_key_checks(keys_rise),
        *foreign_key_checks(),
        overlapping_assignments_check(),
        *before_opening_checks(),
    ]
    checks = [
        check
        for check in checks
        if all(
            table in tables and column in sound.get(table, set()) for table, column in check.needs
        )
    ]
    # on Spark every query is a job of its own: count every check in one
    on_spark = any(t.get_backend().name == "pyspark" for t in tables.values())
    counts = _counts_at_once(tables, checks) if on_spark else {}
    violations = []
    for i, check in enumerate(checks):
        violation = _run(tables, check, counts.get(i))
        if violation is not None:
            violations.append(violation)
    return violations


def _counts_at_once(tables: Tables, checks: list[Check]) -> dict[int, int]:
    """The number of bad rows of each check, by position, from one query; those that cannot
    be built, or all when the query fails, are left to run (and fail) alone."""
    parts = []
    for i, check in enumerate(checks):
        try:
            bad = check.bad_rows(tables)
        except BACKEND_ERRORS:
            continue
        parts.append(bad.aggregate(rows=ibis._.count()).mutate(check=ibis.literal(i, "int64")))
    if not parts:
        return {}
    try:
        counted = ibis.union(*parts).to_pyarrow().to_pylist()
    except BACKEND_ERRORS:
        return {}
    return {row["check"]: row["rows"] for row in counted}


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


def unique_key_checks(keys_rise: KeysRise | None = None) -> Iterator[Check]:
    """Each key value appears once; ``count`` is the number of repeated key values. Proved
    first, when the rows are in key order, by ``keys_rise`` (the files of a directory) or by
    the engine reading the rows in order."""
    for table, key in KEYS.items():
        columns = ", ".join(key)
        yield Check(
            table,
            columns,
            f"unique key ({columns})",
            tuple((table, column) for column in key),
            lambda tables, table=table, key=key: _repeated(tables[table], key),
            lambda tables, table=table, key=key: (
                _rises_row_after_row(tables[table], key)
                if keys_rise is None
                else keys_rise(table, key)
            ),
        )


def _rises_row_after_row(rows: ir.Table, key: tuple[str, ...]) -> bool:
    """True when every row's key is greater than the row's before it, in the one order the
    engine reads them in: then no key repeats. Tables are mostly written sorted by their key,
    and this is one streaming pass where grouping 80M keys is the costliest check of all.

    Proved only if every row but the first rises (a null key, a second first row, any row
    not above its predecessor: False, and the keys are grouped). Not on Spark, where a window
    over the whole table is one task.
    """
    if rows.get_backend().name == "pyspark":
        return False
    rises = None
    for column in reversed(key):
        value, before = rows[column], rows[column].lag()
        above = value > before
        rises = above if rises is None else above | ((value == before) & rises)
    marked = rows.select(rises=ibis.ifelse(rises, 1, 0))
    counted = marked.aggregate(rows=marked.count(), rising=marked.rises.sum())
    (found,) = counted.to_pyarrow().to_pylist()
    return found["rows"] - (found["rising"] or 0) <= 1


def _repeated(rows: ir.Table, key: tuple[str, ...]) -> ir.Table:
    """The key values ``rows`` hold more than once, one example each.

    Grouping 50M rows by a key of several columns (or a string) is the costliest check of all:
    where the engine hashes, the rows are grouped by one 64-bit hash of the key first, and only
    rows whose hash repeats are grouped by the key itself — the same answer, since equal keys
    hash alike, in about half the time. PostgreSQL groups by the key (it has no such hash).
    """
    single_integer = len(key) == 1 and rows[key[0]].type().is_integer()
    if single_integer or rows.get_backend().name not in HASHING_BACKENDS:
        counted = rows.group_by(list(key)).aggregate(rows=ibis._.count())
    else:
        key_hash = ibis.struct({c: rows[c] for c in key}).hash()
        clashes = rows.group_by(key_hash=key_hash).aggregate(rows=ibis._.count())
        clashes = clashes.filter(clashes.rows > 1)
        # the table read again (not the hashes kept from the first read: a second scan costs
        # less than writing 50M hashes to disk and back)
        suspects = rows.mutate(key_hash=key_hash).semi_join(clashes, "key_hash")
        counted = suspects.group_by(list(key)).aggregate(rows=ibis._.count())
    repeats = counted.filter(counted.rows > 1)
    return repeats.select(example=_example(repeats, key))


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


def date_range_checks(as_of: date | None) -> Iterator[RowCheck]:
    """No date before 1900-01-01 and, when ``as_of`` is known, none after it.

    A timestamp is after ``as_of`` from midnight of the following day on.
    """
    for table, columns in DATE_COLUMNS.items():
        for column in columns:
            shown = _with_key(table, column)
            yield RowCheck(
                table,
                column,
                f"not before {EARLIEST_DATE}",
                (column,),
                _dated(column, lambda values, day: values < day, EARLIEST_DATE),
                shown,
            )
            if as_of is not None and (table, column) not in MAY_FOLLOW_AS_OF:
                first_day_after = 2 if (table, column) in EXCLUSIVE_ENDS else 1
                yield RowCheck(
                    table,
                    column,
                    f"not after as_of {as_of}",
                    (column,),
                    _dated(
                        column,
                        lambda values, day: values >= day,
                        as_of + timedelta(days=first_day_after),
                    ),
                    shown,
                )


def _dated(column: str, breaks, day: date) -> Callable[[ir.Table], ir.BooleanValue]:
    """Whether a row's ``column`` ``breaks`` the rule against ``day`` (midnight, for a
    timestamp)."""

    def check(rows: ir.Table) -> ir.BooleanValue:
        values = rows[column]
        bound = (
            ibis.timestamp(datetime.combine(day, datetime.min.time()))
            if values.type().is_timestamp()
            else ibis.date(day)
        )
        return breaks(values, bound)

    return check


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


def _run(tables: Tables, check: Check, count: int | None = None) -> Violation | None:
    """The check's violation, or None; ``count``, when known, saves counting again."""
    try:
        if count is None and check.holds is not None and check.holds(tables):
            return None
        bad = check.bad_rows(tables)
        count = int(bad.count().execute()) if count is None else count
        examples = _examples(bad) if count else []
    except BACKEND_ERRORS as error:  # report, never raise
        rule = f"could not check {check.rule}"
        return Violation(check.table, check.column, rule, 0, [_first_line(error)])
    if count == 0:
        return None
    return Violation(check.table, check.column, check.rule, count, examples)


def _examples(bad: ir.Table) -> list[str]:
    """The first ``MAX_EXAMPLES`` of ``bad.example`` in sort order: the same on every backend."""
    return bad.order_by("example").limit(MAX_EXAMPLES).example.to_pyarrow().to_pylist()


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
