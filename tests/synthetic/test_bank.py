"""The synthetic bank: deterministic, shaped like a bank, and honest about its truth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features.config import BankConfig
from features.profile import profile_bank
from features.sources.files import INPUT_TABLES, read_meta, read_table, table_glob
from synthetic.bank import write_bank
from synthetic.config import DEFAULT_CATALOGUE, SynthConfig


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    # 30k customers spans two generation chunks, so chunk seeding is covered too
    config = SynthConfig(customers=30_000, months=6, seed=3)
    write_bank(config, tmp_path / "a")
    write_bank(config, tmp_path / "b")
    write_bank(SynthConfig(customers=30_000, months=6, seed=4), tmp_path / "c")
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert len(a) >= len(INPUT_TABLES) + 2
    assert a == b
    differing = [name for name in a if a[name] != c.get(name)]
    assert "balances/part-00000.parquet" in differing
    assert "transactions/part-00001.parquet" in differing


def test_a_failed_generation_leaves_the_previous_warehouse(tmp_path, monkeypatch):
    out = tmp_path / "bank"
    write_bank(SynthConfig(customers=500, months=6, seed=1), out)
    before = _digest(out)

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("synthetic.bank.truth_rows", explode)
    with pytest.raises(RuntimeError):
        write_bank(SynthConfig(customers=500, months=6, seed=2), out)
    assert _digest(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["bank"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="month-end"):
        SynthConfig(end=pd.Timestamp("2024-12-15").date())
    with pytest.raises(ValueError, match="customers"):
        SynthConfig(customers=0)


@pytest.fixture(scope="module")
def bank_3k(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("banks") / "bank3k"
    write_bank(SynthConfig(customers=3_000, seed=5), out)
    return out


# table → the rows of it dated before the customer opened (a month: before the opening month)
BEFORE_OPENING = {
    "balances": "row.month < last_day(c.open_date)",
    "truth": "row.month < last_day(c.open_date)",
    "transactions": "row.ts < c.open_date",
    "interactions": "row.ts < c.open_date",
    "complaints": "row.ts < c.open_date",
    "rm_assignments": "row.valid_from < c.open_date",
}


def test_nobody_banks_before_opening(bank_3k):
    """Customers are simulated from their open date: on this bank, 148 young customers dated
    at their 18th birthday once had balances from the window's first month on, and 399 in all
    had rows dated before they opened (events early in the opening month)."""
    customers = f"read_parquet('{table_glob(bank_3k, 'customers')}')"
    early = {}
    for table, before in BEFORE_OPENING.items():
        rows = f"read_parquet('{table_glob(bank_3k, table)}') as row"
        sql = (
            f"select count(*) from {rows} join {customers} as c using (customer_id) where {before}"
        )
        early[table] = duckdb.sql(sql).fetchall()[0][0]
    assert early == dict.fromkeys(BEFORE_OPENING, 0)
    # and a customer who opens in the window is there from the opening month on
    sql = f"""
        select last_day(c.open_date) as opening, min(b.month) as first_month
        from {customers} as c join read_parquet('{table_glob(bank_3k, "balances")}') as b
          using (customer_id)
        where c.open_date >= date '2023-01-01' group by c.customer_id, c.open_date
    """
    openers = duckdb.sql(sql).df()
    assert len(openers) > 300
    assert (openers["first_month"] == openers["opening"]).all()


@pytest.fixture(scope="module")
def profile(bank_20k):
    return profile_bank(bank_20k)


def test_wealth_is_concentrated_like_a_bank(profile):
    assert profile.top20_aum_share >= 0.70


def test_tier_mix_is_plausible(profile):
    share = profile.tiers.set_index("tier")["share"]
    assert share["non_core"] + share["core"] >= 0.75
    assert share["diamond"] <= 0.005
    assert (share > 0).all()


def test_monthly_churn_among_eligible_is_between_one_and_three_percent(profile):
    assert 0.01 <= profile.monthly_churn <= 0.03


def test_churners_show_falling_balances_before_they_leave(profile):
    median = profile.aum_change_3m.set_index("churned")["median_aum_change_3m"]
    assert median[True] <= median[False] - 0.20


def test_true_churn_probability_agrees_with_realised_churn(profile):
    rates = profile.churn_by_cutoff
    realised = (rates["churn_3m"] * rates["eligible"]).sum() / rates["eligible"].sum()
    truth = (rates["truth_p_churn_3m"] * rates["eligible"]).sum() / rates["eligible"].sum()
    assert abs(truth - realised) / realised <= 0.10


def test_products_have_varied_holding_rates(profile):
    rates = profile.holding_rates.set_index("product")["rate"]
    assert set(rates.index) == {p.product for p in DEFAULT_CATALOGUE}
    assert ((rates >= 0.02) & (rates <= 0.90)).sum() >= 6


def test_hidden_churn_term_is_a_small_share_of_the_log_odds(bank_20k):
    share = read_meta(bank_20k)["hidden_share_of_logit_variance"]
    assert 0.02 <= share <= 0.15


def test_every_driver_causes_some_exits(bank_20k):
    exits = read_meta(bank_20k)["exits_by_driver"]
    named = {k: v for k, v in exits.items() if k != "none"}
    assert all(v > 0 for v in named.values())
    assert sum(named.values()) > 2 * exits["none"]


def test_rm_books_hold_100_to_400_customers(bank_20k):
    sql = f"""
        select rm_id, count(*) as book from read_parquet('{table_glob(bank_20k, "rm_assignments")}')
        where valid_from <= date '2024-12-31'
          and (valid_to is null or valid_to > date '2024-12-31')
        group by rm_id
    """
    books = duckdb.sql(sql).df()["book"]
    rms = read_table(bank_20k, "rms")
    assert len(books) == len(rms)
    assert books.between(100, 400).all(), books.describe()
    assert (rms["capacity"] > 0).all()


def test_some_customers_have_no_rm_and_some_were_reassigned(bank_20k):
    assignments = read_table(bank_20k, "rm_assignments")
    customers = read_table(bank_20k, "customers")
    without_rm = 1 - assignments["customer_id"].nunique() / len(customers)
    assert 0.2 <= without_rm <= 0.9
    assert assignments["valid_to"].notna().sum() > 0


def test_some_churners_close_every_account(bank_20k):
    balances = read_table(bank_20k, "balances", ["customer_id", "product", "status"])
    closed_demand = balances.query("product == 'demand_deposit' and status == 'closed'")
    assert closed_demand["customer_id"].nunique() > 50


def test_consent_flag_is_set_for_a_few_percent(bank_20k):
    customers = read_table(bank_20k, "customers", ["do_not_contact"])
    assert 0.01 <= customers["do_not_contact"].mean() <= 0.06


def test_truth_has_a_probability_per_product_and_drivers_for_churners(bank_20k):
    truth = read_table(bank_20k, "truth")
    for product in DEFAULT_CATALOGUE:
        column = truth[f"p_buy_3m_{product.product}"]
        assert column.between(0, 1).all()
    assert truth["p_churn_3m"].dropna().between(0, 1).all()
    assert truth["p_upgrade_3m"].dropna().between(0, 1).all()
    churning = truth["churn_driver"].notna()
    assert churning.any()
    assert truth.loc[churning, "exit_month"].notna().all()


def test_the_profile_shows_the_truth_only_for_a_horizon_the_truth_covers(bank_3k):
    """The truth table holds 3-month probabilities: a 6-month churn is not compared with it."""
    three = profile_bank(bank_3k)
    six = profile_bank(bank_3k, BankConfig().with_overrides(churn={"horizon_months": 6}))
    assert "truth_p_churn_3m" in three.churn_by_cutoff and "churn_3m_truth" in three.summary()
    assert not [c for c in six.churn_by_cutoff if c.startswith("truth_")]
    assert "churn_3m_truth" not in six.summary()
