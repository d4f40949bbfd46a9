"""The table contract of docs/design.md §4 (``SCHEMAS``) and ``validate_warehouse`` to check
it.

Every rule is computed where the tables are — DuckDB over a directory's parquet parts, the
PostgreSQL database, or Spark — and nothing but counts and a few example keys comes back:

- structure (a table present, each part readable, each column present with its type) from the
  parquet footers or the database's catalogue, without reading a row;
- rules on one row at a time (nulls, allowed values, ranges, month-end dates, one column against
  another, dates from 1900 to ``as_of``) counted by the engine: a filtered count per rule on
  DuckDB (the parquet scan skips row groups by their statistics), one aggregate per table
  elsewhere;
- rules on whole tables (keys, foreign keys, overlaps, activity before the customer opened) as
  aggregates and anti-joins (``features.schema_checks``).

Every violation is reported at once and a data problem never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from features.config import WarehouseConfig
from features.schema_checks import (
    BACKEND_ERRORS,
    MAX_EXAMPLES,
    RowCheck,
    Violation,
    date_range_checks,
    relational_violations,
    row_violations,
)
from features.schema_sources import Part, open_tables
from features.sources.files import INPUT_TABLES, LIST_ASSIGNMENTS, OPTIONAL_TABLES

__all__ = ["SCHEMAS", "Violation", "validate_warehouse"]


@dataclass(frozen=True)
class Kind:
    """What a column must hold: ``rule`` names it in a violation, ``accepts`` judges a type."""

    rule: str
    accepts: Callable[[dt.DataType], bool]


TEXT = Kind("dtype string", lambda t: t.is_string())
FLOAT = Kind("dtype float64", lambda t: t.is_float64())
BOOL = Kind("dtype bool", lambda t: t.is_boolean())
DATE = Kind("dtype date", lambda t: t.is_date())
TIMESTAMP = Kind("dtype timestamp", lambda t: t.is_timestamp() and t.timezone is None)
# Counts and tiers may be stored at any integer width.
INTEGER = Kind("dtype integer", lambda t: t.is_integer())
# Ids are whatever the bank has: integers, or strings (core-banking numbers, leading zeros and
# all). They are never converted; a table whose ids differ in kind from customers' is reported
# by the relational checks.
ID = Kind("dtype integer or string", lambda t: t.is_integer() or t.is_string())


@dataclass(frozen=True)
class Rule:
    """A rule on a column's non-null values: ``breaks`` is true for a value that breaks it."""

    name: str
    breaks: Callable[[ir.Column], ir.BooleanValue]


@dataclass(frozen=True)
class Column:
    kind: Kind
    rules: tuple[Rule, ...] = ()
    nullable: bool = False


@dataclass(frozen=True)
class RowRule:
    """A rule comparing columns of one row, reported under ``column``."""

    name: str
    column: str
    needs: tuple[str, ...]
    breaks: Callable[[ir.Table], ir.BooleanValue]


@dataclass(frozen=True)
class TableSchema:
    columns: dict[str, Column]
    row_rules: tuple[RowRule, ...] = ()


def _column(kind: Kind, *rules: Rule, nullable: bool = False) -> Column:
    return Column(kind, rules, nullable)


def _one_of(*values: str) -> Rule:
    return Rule(f"isin({list(values)!r})", lambda column: ~column.isin(values))


def _at_least(bound: float) -> Rule:
    return Rule(f">= {bound}", lambda values: values < bound)


def _above(bound: float) -> Rule:
    return Rule(f"> {bound}", lambda values: values <= bound)


def _below(bound: float) -> Rule:
    return Rule(f"< {bound}", lambda values: values >= bound)


def _between(low: int, high: int) -> Rule:
    return Rule(f"between {low} and {high}", lambda values: ~values.between(low, high))


# the day after a month-end is the first of a month
MONTH_END = Rule("month-end date", lambda days: (days + ibis.interval(days=1)).day() != 1)

VALID_TO_AFTER_VALID_FROM = RowRule(
    "valid_to > valid_from",
    "valid_to",
    ("valid_from", "valid_to"),
    lambda rows: rows.valid_to <= rows.valid_from,
)
RESOLVED_AFTER_RAISED = RowRule(
    "resolved_ts >= ts",
    "resolved_ts",
    ("ts", "resolved_ts"),
    lambda rows: rows.resolved_ts < rows.ts,
)

SCHEMAS: dict[str, TableSchema] = {
    "org": TableSchema(
        {
            "outlet_id": _column(ID),
            "sub_branch_id": _column(ID),
            "branch_id": _column(ID),
            "city": _column(TEXT),
            "city_tier": _column(INTEGER, _between(1, 4)),
        }
    ),
    "rms": TableSchema(
        {
            "rm_id": _column(ID),
            "outlet_id": _column(ID),
            "name": _column(TEXT),
            "capacity": _column(INTEGER, _above(0)),
        }
    ),
    "customers": TableSchema(
        {
            "customer_id": _column(ID),
            "name": _column(TEXT),
            "birth_date": _column(DATE),
            "gender": _column(TEXT, _one_of("F", "M")),
            "occupation": _column(TEXT),
            "education": _column(TEXT),
            "city": _column(TEXT),
            "outlet_id": _column(ID),
            "open_date": _column(DATE),
            "risk_profile": _column(TEXT, _one_of("C1", "C2", "C3", "C4", "C5")),
            "do_not_contact": _column(BOOL),
        }
    ),
    "rm_assignments": TableSchema(
        {
            "customer_id": _column(ID),
            "rm_id": _column(ID),
            "valid_from": _column(DATE),
            "valid_to": _column(DATE, nullable=True),
        },
        (VALID_TO_AFTER_VALID_FROM,),
    ),
    "products": TableSchema(
        {
            "product": _column(TEXT),
            "kind": _column(TEXT, _one_of("asset", "liability", "service")),
            "margin_rate": _column(FLOAT, _at_least(0)),
            "fee_per_year": _column(FLOAT, _at_least(0)),
        }
    ),
    "balances": TableSchema(
        {
            "customer_id": _column(ID),
            "month": _column(DATE, MONTH_END),
            "product": _column(TEXT),
            "avg_daily_balance": _column(FLOAT, _at_least(0)),
            "end_balance": _column(FLOAT, _at_least(0)),
            "status": _column(TEXT, _one_of("open", "closed")),
            "maturity_date": _column(DATE, nullable=True),
        }
    ),
    "transactions": TableSchema(
        {
            "txn_id": _column(ID),
            "customer_id": _column(ID),
            "ts": _column(TIMESTAMP),
            "amount": _column(FLOAT, _above(0)),
            "direction": _column(TEXT, _one_of("in", "out")),
            "channel": _column(TEXT, _one_of("counter", "atm", "mobile", "online")),
            "counterparty": _column(TEXT, _one_of("own", "other_bank", "merchant", "salary")),
        }
    ),
    "interactions": TableSchema(
        {
            "interaction_id": _column(ID),
            "customer_id": _column(ID),
            "rm_id": _column(ID),
            "ts": _column(TIMESTAMP),
            "kind": _column(TEXT, _one_of("call", "visit", "event", "message")),
            "outcome": _column(TEXT),
        }
    ),
    "complaints": TableSchema(
        {
            "complaint_id": _column(ID),
            "customer_id": _column(ID),
            "ts": _column(TIMESTAMP),
            "category": _column(TEXT),
            "resolved_ts": _column(TIMESTAMP, nullable=True),
        },
        (RESOLVED_AFTER_RAISED,),
    ),
    # optional (docs/design.md §14): earlier campaigns' randomised assignments; p_treat is the known
    # probability of being put on a list — for "none" the probability it would have been
    # drawn — strictly between 0 and 1, or the row was never randomised
    LIST_ASSIGNMENTS: TableSchema(
        {
            "customer_id": _column(ID),
            "cutoff": _column(DATE, MONTH_END),
            "list_id": _column(ID),
            "group": _column(TEXT, _one_of("treated", "control", "explore", "none")),
            "p_treat": _column(FLOAT, _above(0), _below(1)),
            "rank": _column(INTEGER, _at_least(1)),
        }
    ),
}
ALL_TABLES = (*INPUT_TABLES, *OPTIONAL_TABLES)


def validate_warehouse(
    warehouse: Path | str,
    settings: WarehouseConfig = WarehouseConfig(),  # noqa: B008 - frozen, one shared default
    as_of: date | None = None,
) -> list[Violation]:
    """Check every input table of a warehouse and return all violations, grouped by table.

    Parameters
    ----------
    warehouse : Path or str
        Directory holding the tables of docs/design.md §4 (``<table>.parquet`` or
        ``<table>/*.parquet``), the URL of a database holding them
        (``postgres://user@host:port/db``), or a Spark catalog database (``spark://DB``).
        Optional tables (``list_assignments``) are checked when present and never missed.
    settings : WarehouseConfig
        The engine that computes the checks, as for the feature build: a directory is read by
        DuckDB or by Spark (its master and memory); ``spark://DB`` needs Spark; a database
        computes its own checks whatever the engine.
    as_of : date, optional
        No date may follow it. Defaults to ``as_of`` in the warehouse's ``_meta.json``, else the
        latest ``month`` in balances; without either, only the 1900-01-01 floor is checked.

    Returns
    -------
    list[Violation]
        Empty for a clean warehouse. ``count`` is the number of rows breaking the rule (keys,
        for a unique key; parts, for an unreadable file); missing tables, unreadable files,
        missing columns and wrong dtypes are violations too. The same rows report the same
        violations, examples included, in a directory, a database or on Spark.

    Raises
    ------
    EngineError
        For ``spark://DB`` without the Spark engine, or a Spark that does not start.
    """
    with open_tables(warehouse, settings) as source:
        return _validate(source, as_of)


def _validate(source, as_of: date | None) -> list[Violation]:
    violations: list[Violation] = []
    sound: dict[str, set[str]] = {}
    for table in ALL_TABLES:
        where = source.absent(table)
        if where is not None:
            if table not in OPTIONAL_TABLES:  # an optional table may be absent
                violations.append(Violation(table, "*", "table present", 1, [where]))
            continue
        found, unsound = structure_violations(table, source.parts(table, SCHEMAS[table].columns))
        violations += found
        sound[table] = set(SCHEMAS[table].columns) - unsound
    unreadable, tables = source.ibis_tables(sound)
    violations += unreadable
    as_of = _as_date(as_of) or _as_date(source.meta_as_of()) or _latest_month(tables, sound)
    violations += row_violations(tables, sound, [*schema_row_checks(), *date_range_checks(as_of)])
    violations += relational_violations(tables, sound, source.keys_rise)
    return sorted(violations, key=lambda violation: ALL_TABLES.index(violation.table))


def structure_violations(table: str, parts: Iterator[Part]) -> tuple[list[Violation], set[str]]:
    """Unreadable parts, missing columns and wrong types of ``table``'s parts, added up over
    the parts; and the columns some part lacks or holds with a wrong type (``unsound``)."""
    schema = SCHEMAS[table]
    merged: dict[tuple[str, str], Violation] = {}
    unsound: set[str] = set()

    def add(column: str, rule: str, count: int, example: str) -> None:
        examples = [example]
        earlier = merged.get((column, rule))
        if earlier is not None:
            count, examples = earlier.count + count, [*earlier.examples, example][:MAX_EXAMPLES]
        merged[column, rule] = Violation(table, column, rule, count, examples)

    for part in parts:
        if part.schema is None:
            add("*", part.unreadable_rule, 1, part.error)
            unsound |= set(schema.columns)
            continue
        for name, column in schema.columns.items():
            if name not in part.schema:
                add(name, "column present", part.rows, part.name)
            elif not column.kind.accepts(part.schema[name]):
                found = part.schema[name].copy(nullable=True)
                add(name, column.kind.rule, part.rows, f"{part.name}: found {found}")
            else:
                continue
            unsound.add(name)
    return list(merged.values()), unsound


def schema_row_checks() -> Iterator[RowCheck]:
    """Each table's column rules (not null, then the column's own rules) and row rules."""
    for table, schema in SCHEMAS.items():
        for name, column in schema.columns.items():
            if not column.nullable:
                yield RowCheck(table, name, "not null", (name,), _is_null(name))
            for rule in column.rules:
                yield RowCheck(table, name, rule.name, (name,), _breaks(name, rule))
        for rule in schema.row_rules:
            yield RowCheck(table, rule.column, rule.name, rule.needs, rule.breaks)


def _is_null(name: str) -> Callable[[ir.Table], ir.BooleanValue]:
    return lambda rows: rows[name].isnull()


def _breaks(name: str, rule: Rule) -> Callable[[ir.Table], ir.BooleanValue]:
    return lambda rows: rule.breaks(rows[name])


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
        try:
            return date.fromisoformat(value[:10])
        except ValueError:  # malformed metadata: fall back to the data
            return None
    return value if isinstance(value, date) else None
