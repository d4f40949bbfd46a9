"""A tiny warehouse written out by hand, and every expected value worked out by hand.

Six customers, December 2023 – June 2024, two outlets in two sub-branches of one branch:

| id | outlet | AUM (CNY)                                   | notes |
|----|--------|---------------------------------------------|-------|
| 1  | O1     | 10,000 every month (core: bound → tier above) | salary Dec–Mar then none; card opened Apr |
| 2  | O1     | 9,999.99 until May, 10,000 in June          | non_core at March, upgrades by June |
| 3  | O1     | 50,000 demand + 50,000 time deposit = 100k  | gold; deposit matures 2024-07-20 |
| 4  | O1     | 6,000,000                                   | diamond; the bank's top contributor |
| 5  | O2     | 300,000 Dec–Mar, 90,000 Apr–Jun             | drops platinum → core; exactly 30%: not churn |
| 6  | O2     | 1,000,000 Dec–Mar, 10,000 Apr–Jun           | leaves after March: churn |
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import build_features, select_output
from features.catalog import feature_names
from features.config import BankConfig
from features.engine import connect, load_warehouse
from synthetic.config import DEFAULT_CATALOGUE

CONFIG = BankConfig()
MONTHS = [d.date() for d in pd.date_range("2023-12-31", "2024-06-30", freq="ME")]
MARCH, JUNE = date(2024, 3, 31), date(2024, 6, 30)


def _write(folder: Path, name: str, rows: list[dict], types: dict) -> None:
    table = pa.table({c: pa.array([r[c] for r in rows], type=t) for c, t in types.items()})
    pq.write_table(table, folder / f"{name}.parquet")


def _balances() -> list[dict]:
    aum = {
        1: [10_000.0] * 7,
        2: [9_999.99] * 6 + [10_000.0],
        4: [6_000_000.0] * 7,
        5: [300_000.0] * 4 + [90_000.0] * 3,
        6: [1_000_000.0] * 4 + [10_000.0] * 3,
    }
    rows = []
    for customer, series in aum.items():
        for month, amount in zip(MONTHS, series, strict=True):
            rows.append(dict(customer_id=customer, month=month, product="demand_deposit",
                             avg_daily_balance=amount, end_balance=amount, status="open",
                             maturity_date=None))  # fmt: skip
    for month in MONTHS:
        for product, maturity in (("demand_deposit", None), ("time_deposit", date(2024, 7, 20))):
            rows.append(dict(customer_id=3, month=month, product=product,
                             avg_daily_balance=50_000.0, end_balance=50_000.0, status="open",
                             maturity_date=maturity))  # fmt: skip
    for month in MONTHS[4:]:  # the credit card opened in April
        rows.append(dict(customer_id=1, month=month, product="credit_card", avg_daily_balance=0.0,
                         end_balance=0.0, status="open", maturity_date=None))  # fmt: skip
    return rows


def _txn(txn_id, ts, amount, direction, channel, counterparty, customer=1):
    return dict(txn_id=txn_id, customer_id=customer, ts=pd.Timestamp(ts), amount=amount,
                direction=direction, channel=channel, counterparty=counterparty)  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    wh = tmp_path_factory.mktemp("hand") / "wh"
    wh.mkdir()
    s, f, i64, d, ts = pa.string(), pa.float64(), pa.int64(), pa.date32(), pa.timestamp("s")
    _write(wh, "org", [
        dict(outlet_id="O1", outlet_name="一号", sub_branch_id="S1", branch_id="B1", city="上海", city_tier=1),
        dict(outlet_id="O2", outlet_name="二号", sub_branch_id="S2", branch_id="B1", city="上海", city_tier=1),
    ], dict(outlet_id=s, outlet_name=s, sub_branch_id=s, branch_id=s, city=s, city_tier=pa.int8()))  # fmt: skip
    _write(wh, "rms", [dict(rm_id=r, outlet_id="O1", name=r, capacity=50) for r in ("RM1", "RM2")],
           dict(rm_id=s, outlet_id=s, name=s, capacity=pa.int32()))  # fmt: skip
    customers = [
        dict(customer_id=c, name=f"客户{c}", birth_date=date(1980, 6, 30), gender="F",
             occupation="salaried", education="bachelor", city="上海",
             outlet_id="O1" if c <= 4 else "O2", open_date=date(2020, 1, 1),
             risk_profile="C3", do_not_contact=False)
        for c in range(1, 7)
    ]  # fmt: skip
    _write(wh, "customers", customers, dict(
        customer_id=i64, name=s, birth_date=d, gender=s, occupation=s, education=s, city=s,
        outlet_id=s, open_date=d, risk_profile=s, do_not_contact=pa.bool_()))  # fmt: skip
    _write(wh, "rm_assignments", [
        dict(customer_id=1, rm_id="RM1", valid_from=date(2023, 1, 1), valid_to=JUNE),
        dict(customer_id=1, rm_id="RM2", valid_from=JUNE, valid_to=None),
    ], dict(customer_id=i64, rm_id=s, valid_from=d, valid_to=d))  # fmt: skip
    _write(wh, "products", [
        dict(product=p.product, kind=p.kind, margin_rate=p.margin_rate,
             fee_per_year=p.fee_per_year) for p in DEFAULT_CATALOGUE
    ], dict(product=s, kind=s, margin_rate=f, fee_per_year=f))  # fmt: skip
    _write(wh, "balances", _balances(), dict(
        customer_id=i64, month=d, product=s, avg_daily_balance=f, end_balance=f, status=s,
        maturity_date=d))  # fmt: skip
    _write(wh, "transactions", [
        *[_txn(k, f"2024-{m:02d}-10 09:00", 8_000.0, "in", "online", "salary", 1)
          for k, m in ((1, 1), (2, 2), (3, 3))],
        _txn(4, "2023-12-10 09:00", 8_000.0, "in", "online", "salary"),
        _txn(5, "2024-04-02 10:00", 500.0, "out", "mobile", "merchant"),
        _txn(6, "2024-05-20 10:00", 2_000.0, "in", "mobile", "own"),
        _txn(7, "2024-06-15 10:00", 3_000.0, "out", "online", "merchant"),
        _txn(8, "2024-06-30 23:59:59", 1_000.0, "out", "mobile", "other_bank"),  # cutoff day
        _txn(9, "2024-07-01 00:00:00", 99_999.0, "out", "mobile", "other_bank"),  # after it
    ], dict(customer_id=i64, txn_id=i64, ts=ts, amount=f, direction=s, channel=s,
            counterparty=s))  # fmt: skip
    _write(wh, "interactions", [
        dict(interaction_id=1, customer_id=1, rm_id="RM1", ts=pd.Timestamp("2024-02-01 10:00"),
             kind="call", outcome="reached"),
        dict(interaction_id=2, customer_id=1, rm_id="RM1", ts=pd.Timestamp("2024-05-01 10:00"),
             kind="visit", outcome="reached"),
    ], dict(interaction_id=i64, customer_id=i64, rm_id=s, ts=ts, kind=s, outcome=s))  # fmt: skip
    _write(wh, "complaints", [
        dict(complaint_id=1, customer_id=1, ts=pd.Timestamp("2024-03-05 10:00"), category="fees",
             resolved_ts=pd.Timestamp("2024-03-15 10:00")),
        dict(complaint_id=2, customer_id=1, ts=pd.Timestamp("2024-06-10 10:00"),
             category="service", resolved_ts=pd.Timestamp("2024-07-05 10:00")),
    ], dict(complaint_id=i64, customer_id=i64, ts=ts, category=s, resolved_ts=ts))  # fmt: skip
    return wh


@pytest.fixture(scope="module")
def table(warehouse) -> pd.DataFrame:
    rows = build_features(load_warehouse(connect(), warehouse), [MARCH, JUNE], CONFIG)
    products = [p.product for p in DEFAULT_CATALOGUE]
    frame = select_output(rows, feature_names(products)).to_pandas()
    frame["cutoff"] = pd.to_datetime(frame["cutoff"]).dt.date
    return frame.set_index(["cutoff", "customer_id"])


def at(table, cutoff, customer, column):
    return table.loc[(cutoff, customer), column]


def test_tiers_with_boundaries_exactly_at_the_thresholds(table):
    expected = {1: "core", 2: "non_core", 3: "gold", 4: "diamond", 5: "platinum", 6: "black_gold"}
    for customer, tier in expected.items():
        assert at(table, MARCH, customer, "tier") == tier, customer
    assert at(table, MARCH, 3, "tier_level") == 2


def test_tier_history(table):
    assert at(table, JUNE, 5, "tier") == "core"
    assert at(table, JUNE, 5, "tier_downgrades_12m") == 1
    assert at(table, JUNE, 5, "months_in_tier") == 3
    assert at(table, JUNE, 4, "months_in_tier") == 7


def test_pyramid_two_outlets_in_two_sub_branches(table):
    # outlet O1: top 20% of 4 customers = customer 4; O2: top 20% of 2 = customer 6 (level 1);
    # each alone in its sub-branch (level 2); branch B1 holds both: 4 contributes more (level 3),
    # and bank-wide 4 alone is left (level 4)
    levels = table.loc[JUNE, "pyramid_level"].to_dict()
    assert levels == {1: 0, 2: 0, 3: 0, 4: 4, 5: 0, 6: 2}


def test_contribution(table):
    # customer 3: 50k demand × 1.5% + 50k time deposit × 0.8%, a full year's rate
    assert at(table, JUNE, 3, "contribution_12m") == pytest.approx(750 + 400)
    # customer 1: 10k × 1.5% plus the card fee (300 a year) for 3 of 7 months, annualised
    assert at(table, JUNE, 1, "contribution_12m") == pytest.approx(150 + 300 / 12 * 3 / 7 * 12)
    o1 = [at(table, JUNE, c, "contribution_12m") for c in (1, 2, 3, 4)]
    assert at(table, JUNE, 4, "contribution_share_outlet") == pytest.approx(o1[3] / sum(o1))
    assert at(table, JUNE, 5, "aum_change_3m") == pytest.approx(90_000 / 300_000 - 1)
    assert at(table, JUNE, 5, "aum_avg_3m") == pytest.approx(90_000)
    assert at(table, JUNE, 3, "balance_time_deposit") == pytest.approx(50_000)
    assert at(table, JUNE, 1, "aum_slope_6m") == pytest.approx(0.0)


def test_loyalty(table):
    assert at(table, JUNE, 1, "tenure_months") == 53  # January 2020 → June 2024
    assert at(table, JUNE, 1, "products_held") == 2
    assert at(table, JUNE, 1, "months_since_last_product_open") == 2  # card opened in April
    assert at(table, JUNE, 1, "salary_credit_3m") == 0
    assert bool(at(table, JUNE, 1, "salary_credit_lost")) is True
    assert bool(at(table, MARCH, 1, "salary_credit_lost")) is False
    assert at(table, JUNE, 1, "rm_contacts_3m") == 1
    assert at(table, JUNE, 1, "days_since_rm_contact") == 60  # 1 May → 30 June
    assert at(table, JUNE, 1, "rm_id") == "RM2"  # RM1 until (excluding) 30 June
    assert at(table, MARCH, 1, "rm_id") == "RM1"
    assert bool(at(table, JUNE, 2, "rm_assigned")) is False


def test_activity_counts_the_cutoff_day_and_nothing_after(table):
    assert at(table, JUNE, 1, "txn_count_1m") == 2
    assert at(table, JUNE, 1, "txn_count_3m") == 4
    assert at(table, JUNE, 1, "txn_amount_in_3m") == pytest.approx(2_000)
    assert at(table, JUNE, 1, "txn_amount_out_3m") == pytest.approx(4_500)
    assert at(table, JUNE, 1, "outflow_to_other_banks_share_3m") == pytest.approx(1_000 / 4_500)
    assert at(table, JUNE, 1, "mobile_share_3m") == pytest.approx(3 / 4)
    assert at(table, JUNE, 1, "activity_change_3m") == pytest.approx(4 / 3 - 1)
    assert at(table, JUNE, 1, "days_since_last_txn") == 0


def test_satisfaction_a_complaint_resolved_after_the_cutoff_is_open_at_it(table):
    assert at(table, JUNE, 1, "complaints_12m") == 2
    assert at(table, JUNE, 1, "open_complaints") == 1
    assert at(table, JUNE, 1, "days_to_resolve_avg") == pytest.approx(10)
    assert at(table, MARCH, 1, "open_complaints") == 0


def test_lifecycle(table):
    assert at(table, JUNE, 3, "maturing_30d") == pytest.approx(50_000)  # 20 days
    assert at(table, MARCH, 3, "maturing_30d") == 0
    assert at(table, JUNE, 3, "maturing_product") == "time_deposit"
    assert pd.Timestamp(at(table, JUNE, 3, "maturing_date")) == pd.Timestamp("2024-07-20")
    assert at(table, JUNE, 1, "age") == 44
    assert at(table, JUNE, 6, "city_tier") == 1


def test_labels_at_march(table):
    assert at(table, MARCH, 6, "label_churn") == 1  # 10k in June < 30% of 1M
    assert at(table, MARCH, 5, "label_churn") == 0  # 90k is exactly 30% of 300k: not below
    assert at(table, MARCH, 1, "label_churn") == 0  # 10,000 average: eligible at the bound
    assert pd.isna(at(table, MARCH, 2, "label_churn"))  # 9,999.99: not eligible
    assert at(table, MARCH, 2, "label_upgrade") == 1
    assert pd.isna(at(table, MARCH, 4, "label_upgrade"))  # diamond cannot move up
    assert at(table, MARCH, 1, "label_cross_sell_credit_card") == 1
    assert at(table, MARCH, 1, "label_cross_sell_time_deposit") == 0
    assert pd.isna(at(table, MARCH, 3, "label_cross_sell_time_deposit"))  # already held
    assert table.loc[JUNE].filter(like="label_").isna().all().all()  # horizon not complete
