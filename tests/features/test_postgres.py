"""A warehouse in a real PostgreSQL server: loaded, validated and built with the same code.

The server is started by the tests (``postgres_url`` in conftest.py); the bank is a small
synthetic one copied in with ``load_parquet_into``.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as arrow
import pyarrow.parquet as pq
import pytest

from features.config import BankConfig
from features.engine import open_warehouse
from features.materialize import write_features
from features.schema import Violation, validate_warehouse
from features.sources.database import as_location, is_database_url, load_parquet_into
from features.sources.files import INPUT_TABLES, WarehouseError, read_table, table_files
from synthetic.bank import write_bank
from synthetic.config import SynthConfig

CUTOFFS = [date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30)]


@pytest.fixture(scope="module")
def bank_2k(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("banks") / "bank2k"
    write_bank(SynthConfig(customers=2_000, seed=3), out)
    return out


def _database(server_url: str, name: str) -> str:
    """A fresh database ``name`` on the test server; its URL."""
    admin = ibis.connect(server_url)
    try:
        admin.raw_sql(f'DROP DATABASE IF EXISTS "{name}"').close()
        admin.raw_sql(f'CREATE DATABASE "{name}"').close()
    finally:
        admin.disconnect()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def bank_url(postgres_url, bank_2k) -> str:
    url = _database(postgres_url, "bank2k")
    load_parquet_into(url, bank_2k)
    return url


def test_a_location_is_a_directory_or_a_database_url():
    assert is_database_url("postgres://me@db.example:5432/bank")
    assert is_database_url("postgresql://me@db.example/bank")
    assert not is_database_url("data/warehouse")
    # a command line that made a Path of the URL collapsed its "//"
    assert as_location(Path("postgresql://me@db.example/bank")) == "postgresql://me@db.example/bank"
    assert as_location("data/warehouse") == Path("data/warehouse")


def test_loading_copies_every_table_row_for_row(bank_2k, bank_url):
    con, wh = open_warehouse(bank_url)

    assert con.name == "postgres"
    for table in INPUT_TABLES:
        rows = sum(pq.read_metadata(path).num_rows for path in table_files(bank_2k, table))
        assert getattr(wh, table).count().execute() == rows, table
    assert wh.truth is not None
    assert sorted(wh.customers.customer_id.execute()) == sorted(
        read_table(bank_2k, "customers", ["customer_id"]).customer_id
    )


def test_the_loaded_bank_is_valid(bank_url):
    assert validate_warehouse(bank_url) == []


def _rewrite(broken: Path, table: str, change) -> None:
    """Rewrite the one part of ``table`` (a 2,000-customer bank has one) as ``change`` makes it."""
    (part,) = table_files(broken, table)
    rows = pq.read_table(part)
    frame = change(rows.to_pandas())
    pq.write_table(arrow.Table.from_pandas(frame, schema=rows.schema, preserve_index=False), part)


def _break(bank: Path, broken: Path) -> None:
    """A copy of ``bank`` with a repeated balances row, a negative balance, an orphan, and
    balances and transactions of two customers moved before they opened."""
    shutil.copytree(bank, broken)
    opened = read_table(broken, "customers").set_index("customer_id")["open_date"]
    # customers who opened in 2024, but none of those whose rows 10, 20, 30 break otherwise
    touched = read_table(broken, "balances", ["customer_id"]).iloc[:31]["customer_id"]
    in_2024 = pd.to_datetime(opened) >= pd.Timestamp("2024-01-01")
    late = opened.index[in_2024 & ~opened.index.isin(touched)][:2]

    def balances(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[10, "end_balance"] = -50.0
        frame.loc[20, "customer_id"] = 9_999_999
        # each one's first month of balances a month earlier: before the month it opened
        first = frame[frame["customer_id"].isin(late)].groupby("customer_id")["month"].idxmin()
        frame.loc[first, "month"] = frame.loc[first, "month"].map(
            lambda month: (pd.Timestamp(month) - pd.offsets.MonthEnd(1)).date()
        )
        return pd.concat([frame, frame.iloc[[30]]], ignore_index=True)

    def transactions(frame: pd.DataFrame) -> pd.DataFrame:
        # three of the first customer's transactions on the day before it opened
        rows = frame.index[frame["customer_id"] == late[0]][:3]
        day_before = pd.Timestamp(opened[late[0]]) - pd.Timedelta(days=1)
        frame.loc[rows, "ts"] = day_before + pd.Timedelta(hours=10)
        return frame

    _rewrite(broken, "balances", balances)
    _rewrite(broken, "transactions", transactions)


def test_a_broken_bank_reports_the_same_violations_in_either_place(postgres_url, bank_2k, tmp_path):
    broken = tmp_path / "broken"
    _break(bank_2k, broken)
    url = _database(postgres_url, "broken")
    load_parquet_into(url, broken)

    from_parquet = validate_warehouse(broken)
    from_postgres = validate_warehouse(url)

    assert {(v.table, v.column, v.rule, v.count) for v in from_postgres} == {
        ("balances", "end_balance", ">= 0", 1),
        ("balances", "customer_id", "foreign key → customers.customer_id", 1),
        ("balances", "customer_id, month, product", "unique key (customer_id, month, product)", 1),
        ("balances", "month", "not before the month of customers.open_date", 2),
        ("transactions", "ts", "not before customers.open_date", 3),
    }
    assert from_postgres == from_parquet  # examples included


def test_features_built_in_postgres_equal_the_parquet_build(bank_2k, bank_url, tmp_path):
    config = BankConfig()
    in_duckdb = write_features(bank_2k, CUTOFFS, tmp_path / "duckdb.parquet", config)
    in_postgres = write_features(bank_url, CUTOFFS, tmp_path / "postgres.parquet", config)

    assert in_postgres["engine"] == "postgres"
    key = ["customer_id", "cutoff"]
    expected = pd.read_parquet(in_duckdb["out"]).sort_values(key, ignore_index=True)
    found = pd.read_parquet(in_postgres["out"]).sort_values(key, ignore_index=True)
    assert list(found.columns) == list(expected.columns)
    assert len(found) == len(expected) > 0
    for column in expected.columns:
        left, right = found[column], expected[column]
        if pd.api.types.is_float_dtype(right):
            np.testing.assert_allclose(
                left.to_numpy(float), right.to_numpy(float), rtol=0, atol=1e-9, err_msg=column
            )
        else:
            pd.testing.assert_series_equal(left, right, check_dtype=False, obj=column)


def test_a_missing_table_names_itself(postgres_url, bank_2k):
    url = _database(postgres_url, "partial")
    load_parquet_into(url, bank_2k, tables=tuple(t for t in INPUT_TABLES if t != "complaints"))

    with pytest.raises(WarehouseError, match="complaints"):
        open_warehouse(url)
    assert validate_warehouse(url) == [
        Violation("complaints", "*", "table present", 1, ["table complaints in the database"])
    ]


@pytest.fixture(scope="module")
def campaign_bank(tmp_path_factory) -> Path:
    """A small bank with a campaign history: list_assignments is one of its tables."""
    out = tmp_path_factory.mktemp("banks") / "campaign"
    write_bank(
        SynthConfig(customers=1_500, months=8, seed=9, campaign={"start": "2024-08-31"}), out
    )
    return out


def _break_assignments(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows 0–2 broken one rule each, a repeated row, an unknown customer and a cutoff
    before its customer opened."""
    frame.loc[0, "group"] = "held_out"
    frame.loc[1, "p_treat"] = 1.0
    frame.loc[2, "cutoff"] = (pd.Timestamp(frame.loc[2, "cutoff"]) - pd.Timedelta(days=3)).date()
    orphan = frame.iloc[[3]].assign(customer_id=9_999_999)
    early = frame.iloc[[4]].assign(cutoff=date(1900, 1, 31))
    return pd.concat([frame, frame.iloc[[5]], orphan, early], ignore_index=True)


def test_list_assignments_report_the_same_violations_in_either_place(
    postgres_url, campaign_bank, tmp_path
):
    clean_url = _database(postgres_url, "campaign")
    loaded = load_parquet_into(clean_url, campaign_bank)
    assert loaded["list_assignments"] == len(read_table(campaign_bank, "list_assignments"))
    assert validate_warehouse(campaign_bank) == [] == validate_warehouse(clean_url)

    broken = tmp_path / "broken"
    shutil.copytree(campaign_bank, broken)
    _rewrite(broken, "list_assignments", _break_assignments)
    url = _database(postgres_url, "campaign_broken")
    load_parquet_into(url, broken)

    from_parquet = validate_warehouse(broken)
    from_postgres = validate_warehouse(url)

    table = "list_assignments"
    assert {(v.table, v.column, v.rule, v.count) for v in from_postgres} == {
        (table, "group", "isin(['treated', 'control', 'explore', 'none'])", 1),
        (table, "p_treat", "< 1", 1),
        (table, "cutoff", "month-end date", 1),
        (table, "customer_id, cutoff", "unique key (customer_id, cutoff)", 1),
        (table, "customer_id", "foreign key → customers.customer_id", 1),
        (table, "cutoff", "not before the month of customers.open_date", 1),
    }
    assert from_postgres == from_parquet  # examples included
    first = read_table(campaign_bank, "list_assignments").iloc[0]
    (group,) = [v for v in from_postgres if v.column == "group"]
    assert group.examples == [f"customer_id={first.customer_id}, cutoff={first.cutoff}"]
