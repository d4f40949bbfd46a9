"""Building only the months the windows read: the reach comes from the feature expressions, and
the trimmed build equals the full 24-month panel."""

from __future__ import annotations

from datetime import date

import ibis
import pandas as pd
import pytest

from features.at_month import at_month
from features.build import (
    build_features,
    check_cutoffs,
    customer_rows,
    feature_panel,
    row_only_columns,
    select_output,
)
from features.catalog import feature_names
from features.config import BankConfig
from features.engine import connect, load_warehouse
from features.panel import UNBOUNDED, build_panel, month_number, window_reach
from synthetic.config import DEFAULT_CATALOGUE, as_products

CONFIG = BankConfig().with_products(as_products(DEFAULT_CATALOGUE))


@pytest.fixture(scope="module")
def warehouse(small_bank):
    return load_warehouse(connect(), small_bank)


def test_the_reach_of_each_feature_is_read_from_its_expression(warehouse):
    reach = window_reach(customer_rows(warehouse, [date(2024, 6, 30)], CONFIG))
    assert reach["aum_avg_1m"] == (0, 0)
    assert reach["aum_avg_3m"] == (2, 0)
    assert reach["aum_avg_12m"] == (11, 0)
    assert reach["aum_change_6m"] == (6, 0)
    # a 6-month count of month-on-month drops: 5 rows back, each looking one month further
    assert reach["aum_drop_months_6m"] == (6, 0)
    assert reach["tier_downgrades_12m"] == (12, 0)
    assert reach["label_churn"] == (3, CONFIG.churn.horizon_months)
    for name in ("days_since_rm_contact", "open_complaints", "months_in_tier"):
        assert reach[name] == (UNBOUNDED, 0)
    assert max(back for back, _ in reach.values() if back != UNBOUNDED) == 12


@pytest.mark.parametrize(
    "cutoffs",
    [
        [date(2024, 12, 31)],  # the monthly run: the last month, no label can be complete
        [date(2024, 6, 30)],  # one cutoff with labels: windows as aggregates, leads too
        [date(2023, 2, 28)],  # the second month: most windows reach before the data
        [date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30)],  # labels complete
    ],
    ids=["monthly", "one-labelled", "second-month", "spread"],
)
def test_the_trimmed_build_equals_the_full_panel(warehouse, cutoffs):
    first, last = check_cutoffs(warehouse, cutoffs)
    assert (first, last) == (date(2023, 1, 31), date(2024, 12, 31))
    names = feature_names(CONFIG.products)
    keys = ["cutoff", "customer_id"]
    full = select_output(build_features(warehouse, cutoffs, CONFIG), names).to_pandas()
    trimmed = select_output(
        build_features(warehouse, cutoffs, CONFIG, last, trim=True, first_month=first), names
    ).to_pandas()
    assert len(full) > 1000
    pd.testing.assert_frame_equal(
        full.sort_values(keys, ignore_index=True),
        trimmed.sort_values(keys, ignore_index=True),
        check_exact=False,
        rtol=1e-9,
        atol=1e-9,
    )


def test_one_cutoff_is_computed_without_aggregate_windows(warehouse):
    """At one cutoff the windows are aggregates (``features.at_month``): only the two lags
    that feed them month by month stay windows; at three cutoffs every window is one."""
    con = connect()
    one, three = [date(2024, 6, 30)], [date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30)]
    first, last = check_cutoffs(warehouse, three)
    sql = {
        len(cutoffs): con.compile(customer_rows(warehouse, cutoffs, CONFIG, last, True, first))
        for cutoffs in (one, three)
    }
    assert sql[1].count(" OVER ") <= 4 and sql[1].count(" FILTER(WHERE ") > 30
    assert sql[3].count(" OVER ") > 30 and " FILTER(WHERE " not in sql[3]


def test_windows_at_one_month_refuse_what_they_cannot_rewrite(warehouse):
    panel = build_panel(warehouse, CONFIG)
    numbered = panel.mutate(n=ibis.row_number().over(group_by="customer_id", order_by="month"))
    assert at_month(numbered, 24293) is None
    by_outlet = panel.mutate(s=panel.aum.sum().over(group_by="outlet_id", order_by="month_number"))
    assert at_month(by_outlet, 24293) is None


def test_the_columns_read_at_the_cutoff_row_only_come_from_the_expressions(warehouse):
    """No window reads a product's balance; the labels read holdings over the horizon, so a
    holding is read at the cutoff row only when no label can be complete."""
    last = date(2024, 12, 31)
    unlabelled = row_only_columns(warehouse, [last], CONFIG, last)
    labelled = row_only_columns(warehouse, [date(2024, 6, 30)], CONFIG, last)
    for product in CONFIG.product_codes:
        assert f"balance_{product}" in unlabelled and f"balance_{product}" in labelled
        assert f"held_{product}" in unlabelled and f"held_{product}" not in labelled
    for windowed in ("aum", "products_held", "contribution_month", "txn_count", "salary_count"):
        assert windowed not in unlabelled and windowed not in labelled
    assert {"has_balances", "maturing", "maturing_product"} <= unlabelled


def test_one_month_less_than_the_reach_would_change_features(warehouse):
    """The equality above can fail: cut the panel one month short of the longest reach and
    the 12-month tier-downgrade count changes for some customers."""
    cutoff = date(2024, 12, 31)
    m = cutoff.year * 12 + cutoff.month - 1
    panel = build_panel(warehouse, CONFIG)
    last = month_number(warehouse.balances.month.max()).as_scalar()

    def at_cutoff(p) -> pd.Series:
        rows = feature_panel(p, CONFIG, last, labelled=False)
        rows = rows.filter(rows.month_number == m, rows.has_balances > 0)
        frame = rows.select("customer_id", "tier_downgrades_12m").to_pandas()
        return frame.set_index("customer_id")["tier_downgrades_12m"].sort_index()

    full, short = at_cutoff(panel), at_cutoff(panel.filter(panel.month_number >= m - 11))
    assert (full != short).sum() > 0
    exact = at_cutoff(panel.filter(panel.month_number >= m - 12))
    pd.testing.assert_series_equal(full, exact)
