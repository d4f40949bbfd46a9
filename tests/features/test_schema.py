"""validate_warehouse on a tiny hand-written bank: clean, one fault at a time, all at once."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pyarrow as arrow
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.schema import Violation, validate_warehouse
from synthetic.config import DEFAULT_CATALOGUE

SINGLE_FILE_TABLES = {"org", "rms", "products"}

# Types and rows read best as tables, one field or row a line.
# fmt: off
TYPES: dict[str, arrow.Schema] = {
    "org": arrow.schema([
        ("outlet_id", arrow.string()), ("outlet_name", arrow.string()),
        ("sub_branch_id", arrow.string()), ("branch_id", arrow.string()),
        ("city", arrow.string()), ("city_tier", arrow.int64()),
    ]),
    "rms": arrow.schema([
        ("rm_id", arrow.string()), ("outlet_id", arrow.string()),
        ("name", arrow.string()), ("capacity", arrow.int64()),
    ]),
    "customers": arrow.schema([
        ("customer_id", arrow.int64()), ("name", arrow.string()), ("birth_date", arrow.date32()),
        ("gender", arrow.string()), ("occupation", arrow.string()),
        ("education", arrow.string()), ("city", arrow.string()), ("outlet_id", arrow.string()),
        ("open_date", arrow.date32()), ("risk_profile", arrow.string()),
        ("do_not_contact", arrow.bool_()),
    ]),
    "rm_assignments": arrow.schema([
        ("customer_id", arrow.int64()), ("rm_id", arrow.string()),
        ("valid_from", arrow.date32()), ("valid_to", arrow.date32()),
    ]),
    "products": arrow.schema([
        ("product", arrow.string()), ("kind", arrow.string()), ("margin_rate", arrow.float64()),
        ("fee_per_year", arrow.float64()),
    ]),
    "balances": arrow.schema([
        ("customer_id", arrow.int64()), ("month", arrow.date32()), ("product", arrow.string()),
        ("avg_daily_balance", arrow.float64()), ("end_balance", arrow.float64()),
        ("status", arrow.string()), ("maturity_date", arrow.date32()),
    ]),
    "transactions": arrow.schema([
        ("txn_id", arrow.int64()), ("customer_id", arrow.int64()),
        ("ts", arrow.timestamp("us")), ("amount", arrow.float64()),
        ("direction", arrow.string()), ("channel", arrow.string()),
        ("counterparty", arrow.string()),
    ]),
    "interactions": arrow.schema([
        ("interaction_id", arrow.int64()), ("customer_id", arrow.int64()),
        ("rm_id", arrow.string()), ("ts", arrow.timestamp("us")),
        ("kind", arrow.string()), ("outcome", arrow.string()),
    ]),
    "complaints": arrow.schema([
        ("complaint_id", arrow.int64()), ("customer_id", arrow.int64()),
        ("ts", arrow.timestamp("us")), ("category", arrow.string()),
        ("resolved_ts", arrow.timestamp("us")),
    ]),
    "list_assignments": arrow.schema([
        ("customer_id", arrow.int64()), ("cutoff", arrow.date32()), ("list_id", arrow.string()),
        ("group", arrow.string()), ("p_treat", arrow.float64()), ("rank", arrow.int64()),
    ]),
}


def _rows(names: str, *values: tuple) -> list[dict]:
    return [dict(zip(names.split(), row, strict=True)) for row in values]


CLEAN_ROWS: dict[str, list[dict]] = {
    "org": _rows(
        "outlet_id outlet_name sub_branch_id branch_id city city_tier",
        ("O1", "West Lake", "S1", "B1", "Hangzhou", 2),
        ("O2", "Binjiang", "S2", "B1", "Hangzhou", 2),
    ),
    "rms": _rows(
        "rm_id outlet_id name capacity",
        ("R1", "O1", "Li Na", 300),
        ("R2", "O2", "Wang Wei", 250),
    ),
    "customers": _rows(
        "customer_id name birth_date gender occupation education city outlet_id open_date "
        "risk_profile do_not_contact",
        (1, "Zhang", date(1980, 5, 2), "F", "teacher", "bachelor", "Hangzhou", "O1",
         date(2015, 3, 1), "C2", False),
        (2, "Chen", date(1972, 11, 9), "M", "engineer", "master", "Hangzhou", "O1",
         date(2019, 7, 15), "C4", False),
        (3, "Liu", date(1995, 1, 30), "F", "clerk", "college", "Hangzhou", "O2",
         date(2024, 1, 10), "C1", True),
    ),
    "rm_assignments": _rows(
        "customer_id rm_id valid_from valid_to",
        (1, "R1", date(2023, 1, 1), date(2024, 6, 1)),
        (1, "R2", date(2024, 6, 1), None),  # starts the day the first one ends: no overlap
        (2, "R1", date(2023, 3, 1), None),
        (3, "R2", date(2024, 1, 15), None),
    ),
    "products": [
        {"product": p.product, "kind": p.kind, "margin_rate": p.margin_rate,
         "fee_per_year": p.fee_per_year}
        for p in DEFAULT_CATALOGUE
    ],
    "balances": _rows(
        "customer_id month product avg_daily_balance end_balance status maturity_date",
        (1, date(2024, 10, 31), "demand_deposit", 1000.0, 1200.0, "open", None),
        (1, date(2024, 11, 30), "demand_deposit", 1100.0, 900.0, "open", None),
        # a deposit may mature after as_of
        (2, date(2024, 12, 31), "time_deposit", 50000.0, 50000.0, "open", date(2025, 6, 30)),
        (3, date(2024, 12, 31), "credit_card", 0.0, 0.0, "closed", None),
        # customer 3 opened on 2024-01-10: the month it opened in has its balances
        (3, date(2024, 1, 31), "demand_deposit", 500.0, 500.0, "open", None),
    ),
    "transactions": _rows(
        "txn_id customer_id ts amount direction channel counterparty",
        (1, 1, datetime(2024, 12, 31, 23, 59, 59), 8000.0, "in", "mobile", "salary"),
        (2, 2, datetime(2024, 5, 3, 10, 0), 80.5, "out", "atm", "merchant"),
        # at midnight of customer 3's open date: the first moment it may bank
        (3, 3, datetime(2024, 1, 10, 0, 0), 1500.0, "out", "online", "other_bank"),
    ),
    "interactions": _rows(
        "interaction_id customer_id rm_id ts kind outcome",
        (1, 1, "R2", datetime(2024, 9, 2, 14, 0), "call", "interested"),
        (2, 2, "R1", datetime(2024, 10, 8, 11, 0), "visit", "bought fund"),
    ),
    "complaints": _rows(
        "complaint_id customer_id ts category resolved_ts",
        (1, 2, datetime(2024, 7, 1, 9, 0), "fees", datetime(2024, 7, 3, 17, 0)),
        (2, 3, datetime(2024, 11, 20, 16, 0), "app", None),
    ),
    # optional (docs/design.md §14): earlier campaigns' assignments
    "list_assignments": _rows(
        "customer_id cutoff list_id group p_treat rank",
        (1, date(2024, 10, 31), "R2", "treated", 0.9, 1),
        (2, date(2024, 10, 31), "R1", "control", 0.9, 1),
        (3, date(2024, 10, 31), "outlet_O2", "none", 0.05, 1),
        (1, date(2024, 11, 30), "R2", "explore", 0.2, 3),
        (2, date(2024, 11, 30), "R1", "none", 0.2, 4),
        # customer 3 opened on 2024-01-10: a list at the end of that month may hold it
        (3, date(2024, 1, 31), "outlet_O2", "treated", 0.9, 1),
    ),
}


# fmt: on


@dataclass
class Bank:
    """Rows and parquet types of each table; ``unreadable`` tables are written as garbage."""

    rows: dict[str, list[dict]] = field(default_factory=lambda: copy.deepcopy(CLEAN_ROWS))
    types: dict[str, arrow.Schema] = field(default_factory=lambda: dict(TYPES))
    unreadable: set[str] = field(default_factory=set)

    def write(self, warehouse: Path) -> Path:
        warehouse.mkdir(parents=True, exist_ok=True)
        for table, rows in self.rows.items():
            if table in SINGLE_FILE_TABLES:
                path = warehouse / f"{table}.parquet"
            else:
                (warehouse / table).mkdir()
                path = warehouse / table / "part-00000.parquet"
            if table in self.unreadable:
                path.write_bytes(b"this is not parquet")
            else:
                pq.write_table(arrow.Table.from_pylist(rows, schema=self.types[table]), path)
        return warehouse


def _drop_column(bank: Bank, table: str, column: str) -> None:
    schema = bank.types[table]
    bank.types[table] = schema.remove(schema.get_field_index(column))


def _amount_as_text(bank: Bank) -> None:
    schema = bank.types["transactions"]
    index = schema.get_field_index("amount")
    bank.types["transactions"] = schema.set(index, arrow.field("amount", arrow.string()))
    for row in bank.rows["transactions"]:
        row["amount"] = str(row["amount"])


def _set(table: str, row: int, **values) -> Callable[[Bank], None]:
    return lambda bank: bank.rows[table][row].update(values)


def _append(table: str, **values) -> Callable[[Bank], None]:
    return lambda bank: bank.rows[table].append({**CLEAN_ROWS[table][0], **values})


# name: (fault, the one violation it must cause as (table, column, rule, count)). Faults touch
# different rows, so any combination of them causes exactly the union of their violations.
FAULTS: dict[str, tuple[Callable[[Bank], None], tuple[str, str, str, int]]] = {
    "duplicate customer": (
        lambda bank: bank.rows["customers"].append(dict(CLEAN_ROWS["customers"][2])),
        ("customers", "customer_id", "unique key (customer_id)", 1),
    ),
    "orphan customer": (
        _append("balances", customer_id=99, month=date(2024, 12, 31)),
        ("balances", "customer_id", "foreign key → customers.customer_id", 1),
    ),
    "negative balance": (
        _set("balances", 0, end_balance=-5.0),
        ("balances", "end_balance", ">= 0", 1),
    ),
    "unknown product": (
        _append("balances", product="gold_bar"),
        ("balances", "product", "foreign key → products.product", 1),
    ),
    "overlapping assignment": (
        # customer 2's assignment since 2023-03-01 is open-ended
        _append(
            "rm_assignments", customer_id=2, valid_from=date(2024, 2, 1), valid_to=date(2024, 3, 1)
        ),
        ("rm_assignments", "valid_from, valid_to", "no overlapping assignments per customer", 1),
    ),
    "assignment ending before it starts": (
        _append(
            "rm_assignments", customer_id=3, valid_from=date(2023, 6, 1), valid_to=date(2023, 5, 1)
        ),
        ("rm_assignments", "valid_to", "valid_to > valid_from", 1),
    ),
    "invalid enum": (
        _set("balances", 1, status="opened"),
        ("balances", "status", "isin(['open', 'closed'])", 1),
    ),
    "month not a month end": (
        _set("balances", 3, month=date(2024, 11, 15)),
        ("balances", "month", "month-end date", 1),
    ),
    "resolved before raised": (
        _set("complaints", 0, resolved_ts=datetime(2024, 6, 30, 12, 0)),
        ("complaints", "resolved_ts", "resolved_ts >= ts", 1),
    ),
    "timestamp after as_of": (
        _set("transactions", 1, ts=datetime(2025, 1, 1, 0, 0)),
        ("transactions", "ts", "not after as_of 2024-12-31", 1),
    ),
    "date before 1900": (
        _set("customers", 0, birth_date=date(1850, 1, 1)),
        ("customers", "birth_date", "not before 1900-01-01", 1),
    ),
    "null in a required column": (
        _set("customers", 1, gender=None),
        ("customers", "gender", "not null", 1),
    ),
    "null id": (
        _set("transactions", 2, customer_id=None),
        ("transactions", "customer_id", "not null", 1),
    ),
    "missing table": (
        lambda bank: bank.rows.pop("interactions"),
        ("interactions", "*", "table present", 1),
    ),
    "missing column": (
        lambda bank: _drop_column(bank, "rms", "capacity"),
        ("rms", "capacity", "column present", 2),
    ),
    "wrong dtype": (
        _amount_as_text,
        ("transactions", "amount", "dtype float64", 3),
    ),
    "balance before opening": (
        _append("balances", customer_id=3, month=date(2023, 12, 31)),  # opened 2024-01-10
        ("balances", "month", "not before the month of customers.open_date", 1),
    ),
    "transaction before opening": (
        _set("transactions", 0, ts=datetime(2015, 2, 28, 23, 59, 59)),  # opened 2015-03-01
        ("transactions", "ts", "not before customers.open_date", 1),
    ),
    "complaint before opening": (
        _set("complaints", 1, ts=datetime(2023, 12, 24, 9, 0)),  # customer 3
        ("complaints", "ts", "not before customers.open_date", 1),
    ),
    "unreadable parquet": (
        lambda bank: bank.unreadable.add("org"),
        ("org", "*", "readable parquet", 1),
    ),
    "unknown list group": (
        _set("list_assignments", 0, group="maybe"),
        ("list_assignments", "group", "isin(['treated', 'control', 'explore', 'none'])", 1),
    ),
    "p_treat of one": (
        _set("list_assignments", 1, p_treat=1.0),
        ("list_assignments", "p_treat", "< 1", 1),
    ),
    "p_treat of zero": (
        _set("list_assignments", 3, p_treat=0.0),
        ("list_assignments", "p_treat", "> 0", 1),
    ),
    "cutoff not a month end": (
        _set("list_assignments", 4, cutoff=date(2024, 11, 15)),
        ("list_assignments", "cutoff", "month-end date", 1),
    ),
    "rank below one": (
        _set("list_assignments", 5, rank=0),
        ("list_assignments", "rank", ">= 1", 1),
    ),
    "customer assigned twice at a cutoff": (
        lambda bank: bank.rows["list_assignments"].append(dict(CLEAN_ROWS["list_assignments"][2])),
        ("list_assignments", "customer_id, cutoff", "unique key (customer_id, cutoff)", 1),
    ),
    "assignment of an unknown customer": (
        _append("list_assignments", customer_id=99),
        ("list_assignments", "customer_id", "foreign key → customers.customer_id", 1),
    ),
    "assignment after as_of": (
        _append("list_assignments", cutoff=date(2025, 1, 31)),
        ("list_assignments", "cutoff", "not after as_of 2024-12-31", 1),
    ),
    "assignment before opening": (
        _append("list_assignments", customer_id=3, cutoff=date(2023, 12, 31)),
        ("list_assignments", "cutoff", "not before the month of customers.open_date", 1),
    ),
}


def _summary(violations: list[Violation]) -> set[tuple[str, str, str, int]]:
    return {(v.table, v.column, v.rule, v.count) for v in violations}


def _validate_with_faults(warehouse: Path, names: list[str]) -> list[Violation]:
    bank = Bank()
    for name in names:
        FAULTS[name][0](bank)
    return validate_warehouse(bank.write(warehouse))


def test_clean_warehouse_has_no_violations(tmp_path):
    assert validate_warehouse(Bank().write(tmp_path)) == []


@pytest.mark.parametrize("name", FAULTS)
def test_each_fault_is_reported_alone(tmp_path, name):
    violations = _validate_with_faults(tmp_path, [name])

    assert _summary(violations) == {FAULTS[name][1]}
    assert len(violations) == 1


def test_all_faults_are_reported_in_one_call(tmp_path):
    violations = _validate_with_faults(tmp_path, list(FAULTS))

    assert _summary(violations) == {expected for _, expected in FAULTS.values()}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.sets(st.sampled_from(sorted(FAULTS))))
def test_any_combination_of_faults_reports_each_of_them(names):
    with tempfile.TemporaryDirectory() as folder:
        violations = _validate_with_faults(Path(folder), sorted(names))

    assert _summary(violations) == {FAULTS[name][1] for name in names}


def test_examples_name_the_offending_keys(tmp_path):
    violations = _validate_with_faults(
        tmp_path, ["duplicate customer", "negative balance", "orphan customer"]
    )
    examples = {(v.table, v.column): v.examples for v in violations}

    assert examples["customers", "customer_id"] == ["customer_id=3"]
    assert examples["balances", "end_balance"] == [
        "customer_id=1, month=2024-10-31, product=demand_deposit"
    ]
    assert examples["balances", "customer_id"] == [
        "customer_id=99, month=2024-12-31, product=demand_deposit"
    ]


def test_activity_before_opening_names_the_rows_and_the_open_date(tmp_path):
    bank = Bank()
    early = {**CLEAN_ROWS["balances"][0], "customer_id": 3, "month": date(2023, 12, 31)}
    bank.rows["balances"].append(early)
    bank.rows["transactions"][2]["ts"] = datetime(2024, 1, 9, 23, 59, 59)
    bank.rows["interactions"][1]["ts"] = datetime(2019, 7, 14, 10, 0)  # opened 2019-07-15
    bank.rows["complaints"][1]["ts"] = datetime(2023, 11, 20, 16, 0)
    # a customer listed twice opened at the earlier date; its rows are counted once
    bank.rows["customers"].append({**CLEAN_ROWS["customers"][2], "open_date": date(2024, 3, 1)})

    violations = validate_warehouse(bank.write(tmp_path))

    month_rule, day_rule = (
        "not before the month of customers.open_date",
        "not before customers.open_date",
    )
    assert violations == [
        Violation("customers", "customer_id", "unique key (customer_id)", 1, ["customer_id=3"]),
        Violation(
            "balances",
            "month",
            month_rule,
            1,
            ["customer_id=3, month=2023-12-31, product=demand_deposit, open_date=2024-01-10"],
        ),
        Violation(
            "transactions",
            "ts",
            day_rule,
            1,
            ["txn_id=3, ts=2024-01-09 23:59:59, customer_id=3, open_date=2024-01-10"],
        ),
        Violation(
            "interactions",
            "ts",
            day_rule,
            1,
            ["interaction_id=2, ts=2019-07-14 10:00:00, customer_id=2, open_date=2019-07-15"],
        ),
        Violation(
            "complaints",
            "ts",
            day_rule,
            1,
            ["complaint_id=2, ts=2023-11-20 16:00:00, customer_id=3, open_date=2024-01-10"],
        ),
    ]


def test_ids_of_another_kind_are_reported_once_by_the_foreign_keys(tmp_path):
    bank = Bank()
    for row in bank.rows["customers"]:
        row["customer_id"] = f"C{row['customer_id']:03d}"
    schema = bank.types["customers"]
    index = schema.get_field_index("customer_id")
    bank.types["customers"] = schema.set(index, arrow.field("customer_id", arrow.string()))

    violations = validate_warehouse(bank.write(tmp_path))

    rule = "could not check foreign key → customers.customer_id"
    assert {(v.table, v.rule) for v in violations} == {
        (table, rule)
        for table in (
            "rm_assignments",
            "balances",
            "transactions",
            "interactions",
            "complaints",
            "list_assignments",
        )
    }


def test_as_of_comes_from_metadata_before_balances(tmp_path):
    warehouse = Bank().write(tmp_path)
    (warehouse / "_meta.json").write_text(json.dumps({"as_of": "2024-11-30"}))

    summary = _summary(validate_warehouse(warehouse))

    assert ("balances", "month", "not after as_of 2024-11-30", 2) in summary
    assert ("transactions", "ts", "not after as_of 2024-11-30", 1) in summary


def test_explicit_as_of_overrides_the_default(tmp_path):
    warehouse = Bank().write(tmp_path)

    violations = validate_warehouse(warehouse, as_of=date(2025, 6, 30))

    assert violations == []


def test_counts_and_examples_add_up_across_parts(tmp_path):
    warehouse = Bank().write(tmp_path)
    second_part = [
        {**row, "txn_id": row["txn_id"] + 10, "amount": -1.0} for row in CLEAN_ROWS["transactions"]
    ]
    pq.write_table(
        arrow.Table.from_pylist(second_part, schema=TYPES["transactions"]),
        warehouse / "transactions" / "part-00001.parquet",
    )
    first_part = pq.read_table(warehouse / "transactions" / "part-00000.parquet").to_pylist()
    first_part[0]["amount"] = 0.0
    pq.write_table(
        arrow.Table.from_pylist(first_part, schema=TYPES["transactions"]),
        warehouse / "transactions" / "part-00000.parquet",
    )

    (violation,) = validate_warehouse(warehouse)

    assert (violation.table, violation.column, violation.rule, violation.count) == (
        "transactions",
        "amount",
        "> 0",
        4,
    )
    assert violation.examples == ["txn_id=1", "txn_id=11", "txn_id=12", "txn_id=13"]


def test_list_assignments_are_optional(tmp_path):
    bank = Bank()
    bank.rows.pop("list_assignments")

    assert validate_warehouse(bank.write(tmp_path)) == []


def test_list_assignment_examples_name_customer_and_cutoff(tmp_path):
    violations = _validate_with_faults(
        tmp_path, ["p_treat of one", "customer assigned twice at a cutoff", "rank below one"]
    )
    examples = {(v.table, v.column): v.examples for v in violations}

    assert examples["list_assignments", "p_treat"] == ["customer_id=2, cutoff=2024-10-31"]
    assert examples["list_assignments", "customer_id, cutoff"] == [
        "customer_id=3, cutoff=2024-10-31"
    ]
    assert examples["list_assignments", "rank"] == ["customer_id=3, cutoff=2024-01-31"]
    # the table's violations come after those of the required tables
    assert [v.table for v in violations][-3:] == ["list_assignments"] * 3


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=st.lists(st.integers(1, 12), min_size=1, max_size=30),
    order=st.randoms(use_true_random=False),
)
def test_repeated_keys_are_counted_whatever_the_row_order(ids, order):
    # sorted and unique, sorted with repeats, shuffled: each key is checked the same way
    if order.random() < 0.5:
        ids = sorted(ids)
    else:
        order.shuffle(ids)
    bank = Bank()
    bank.rows["transactions"] = [
        {**CLEAN_ROWS["transactions"][0], "txn_id": txn_id} for txn_id in ids
    ]
    months = [date(2024, 1, 31), date(2024, 3, 31), date(2024, 5, 31)]
    rows = [(customer, month) for customer in (1, 2) for month in months]
    picked = [rows[i % len(rows)] for i in ids]
    bank.rows["balances"] = [
        {**CLEAN_ROWS["balances"][0], "customer_id": customer, "month": month}
        for customer, month in picked
    ]

    with tempfile.TemporaryDirectory() as folder:
        violations = validate_warehouse(bank.write(Path(folder)), as_of=date(2025, 6, 30))

    found = {(v.table, v.rule): (v.count, v.examples) for v in violations}
    repeated_ids = sorted({i for i in ids if ids.count(i) > 1})
    repeated_rows = sorted({r for r in picked if picked.count(r) > 1})
    expected = {}
    if repeated_ids:
        expected["transactions", "unique key (txn_id)"] = (
            len(repeated_ids),
            sorted(f"txn_id={i}" for i in repeated_ids)[:5],
        )
    if repeated_rows:
        expected["balances", "unique key (customer_id, month, product)"] = (
            len(repeated_rows),
            sorted(f"customer_id={c}, month={m}, product=demand_deposit" for c, m in repeated_rows)[
                :5
            ],
        )
    assert found == expected


def test_nan_is_a_null_not_a_broken_range(tmp_path):
    bank = Bank()
    bank.rows["balances"][0]["end_balance"] = float("nan")
    bank.rows["transactions"][1]["amount"] = float("nan")
    bank.rows["list_assignments"][2]["p_treat"] = float("nan")  # NaN sorts above 1

    violations = validate_warehouse(bank.write(tmp_path))

    assert _summary(violations) == {
        ("balances", "end_balance", "not null", 1),
        ("transactions", "amount", "not null", 1),
        ("list_assignments", "p_treat", "not null", 1),
    }
    examples = {v.table: v.examples for v in violations}
    assert examples["transactions"] == ["txn_id=2"]


def test_a_wrong_type_in_one_part_is_counted_in_that_part_only(tmp_path):
    warehouse = Bank().write(tmp_path)
    second = [{**row, "txn_id": row["txn_id"] + 10} for row in CLEAN_ROWS["transactions"]]
    wrong = TYPES["transactions"].set(
        TYPES["transactions"].get_field_index("amount"), arrow.field("amount", arrow.float32())
    )
    pq.write_table(
        arrow.Table.from_pylist(second, schema=wrong),
        warehouse / "transactions" / "part-00001.parquet",
    )

    assert validate_warehouse(warehouse) == [
        Violation(
            "transactions", "amount", "dtype float64", 3, ["part-00001.parquet: found float32"]
        )
    ]
