"""Point in time: no feature at a cutoff changes when everything after the cutoff is deleted,
and no label changes when everything after cutoff + horizon is deleted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features, select_output
from features.catalog import feature_names
from features.config import BankConfig
from features.engine import connect, load_warehouse
from features.sources.files import INPUT_TABLES, read_table, table_files
from synthetic.bank import write_bank
from synthetic.config import DEFAULT_CATALOGUE, SynthConfig, as_products

CONFIG = BankConfig().with_products(as_products(DEFAULT_CATALOGUE))
MONTHS = pd.date_range(end="2024-12-31", periods=12, freq="ME")


@pytest.fixture(scope="module")
def tiny_bank(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("leak") / "bank"
    write_bank(SynthConfig(customers=400, months=12, seed=21), out)
    return out


def truncate(bank: Path, out: Path, cutoff: date) -> Path:
    """A copy of the warehouse as the bank knew it at the end of ``cutoff``."""
    end = pd.Timestamp(cutoff) + pd.Timedelta(days=1)  # events on the cutoff day are known
    day = pd.Timestamp(cutoff)
    out.mkdir(parents=True)
    for table in INPUT_TABLES:
        frame = read_table(bank, table)
        if table == "customers":
            frame = frame[pd.to_datetime(frame["open_date"]) <= day]
        elif table == "balances":
            frame = frame[pd.to_datetime(frame["month"]) <= day]
        elif table in ("transactions", "interactions"):
            frame = frame[frame["ts"] < end]
        elif table == "complaints":
            frame = frame[frame["ts"] < end].copy()
            frame.loc[frame["resolved_ts"] >= end, "resolved_ts"] = pd.NaT
        elif table == "rm_assignments":
            frame = frame[pd.to_datetime(frame["valid_from"]) <= day].copy()
            frame.loc[pd.to_datetime(frame["valid_to"]) > day, "valid_to"] = pd.NaT
        schema = pq.read_schema(table_files(bank, table)[0])
        arrow = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        pq.write_table(arrow, out / f"{table}.parquet")
    return out


def features_at(bank: Path, cutoff: date) -> pd.DataFrame:
    con = connect()  # DuckDB, the default engine
    rows = build_features(load_warehouse(con, bank), [cutoff], CONFIG)
    frame = select_output(rows, feature_names(CONFIG.products)).to_pandas()
    return frame.set_index("customer_id").sort_index()


def assert_same(left: pd.DataFrame, right: pd.DataFrame, columns: list[str]) -> None:
    assert list(left.index) == list(right.index)
    for column in columns:
        a, b = left[column], right[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(
                a.astype(float),
                b.astype(float),
                rtol=1e-9,
                atol=1e-9,
                equal_nan=True,
                err_msg=column,
            )
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(month=st.integers(min_value=3, max_value=11))
def test_deleting_the_future_changes_no_feature(tiny_bank, tmp_path_factory, month):
    cutoff = MONTHS[month].date()
    known = truncate(tiny_bank, tmp_path_factory.mktemp("cut") / "wh", cutoff)
    full, past = features_at(tiny_bank, cutoff), features_at(known, cutoff)
    names = feature_names(CONFIG.products)
    assert len(full) > 100
    assert_same(full, past, [*names, "rm_id", "tier", "outlet_id", "eligible_churn"])


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(month=st.integers(min_value=3, max_value=8))
def test_labels_only_look_at_the_horizon(tiny_bank, tmp_path_factory, month):
    cutoff = MONTHS[month].date()
    horizon_end = MONTHS[month + CONFIG.churn.horizon_months].date()
    known = truncate(tiny_bank, tmp_path_factory.mktemp("cut") / "wh", horizon_end)
    full, past = features_at(tiny_bank, cutoff), features_at(known, cutoff)
    labels = [c for c in full.columns if c.startswith("label_")]
    assert full["label_churn"].notna().sum() > 50
    assert_same(full, past, labels)


def test_an_event_on_the_cutoff_day_counts_as_known(tiny_bank, tmp_path_factory):
    cutoff = MONTHS[6].date()
    known = truncate(tiny_bank, tmp_path_factory.mktemp("cut") / "wh", cutoff)
    txns = read_table(known, "transactions")
    last_day = txns[txns["ts"].dt.date == cutoff]
    assert len(last_day) > 0  # the truncation kept the cutoff day's transactions
    feats = features_at(known, cutoff)
    customer = int(last_day["customer_id"].iloc[0])
    assert feats.loc[customer, "days_since_last_txn"] == 0
