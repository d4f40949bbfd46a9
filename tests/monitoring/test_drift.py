"""PSI against hand-computed values, the bins it uses, and small groups that must not alarm."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.config import MonitoringPolicy
from monitoring.drift import (
    ACT,
    EPSILON,
    OK,
    TOO_SMALL,
    WATCH,
    drift_table,
    fit_binning,
    psi,
    sampling_floor,
)

POLICY = MonitoringPolicy(min_bin_count=5, min_group_size=100)


def test_psi_of_two_bins_by_hand() -> None:
    # (0.25 − 0.5)·ln(0.25/0.5) + (0.75 − 0.5)·ln(0.75/0.5)
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected, rel=1e-12)
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-15)  # shares, not counts


def test_an_empty_bin_is_floored_at_epsilon() -> None:
    expected = (0.0 + EPSILON - 0.5) * math.log(EPSILON / 0.5) + (1.0 - 0.5) * math.log(1 / 0.5)
    assert psi([50, 50], [0, 100]) == pytest.approx(expected, rel=1e-3)
    assert np.isfinite(psi([0, 100], [100, 0]))


def test_quantile_bins_of_the_reference() -> None:
    binning = fit_binning(pd.Series(np.arange(100.0)), bins=10, min_bin_count=5)
    codes = binning.codes(pd.Series(np.arange(100.0)))
    assert binning.bins == 11  # ten quantile bins and the missing bin
    assert np.bincount(codes, minlength=11).tolist() == [10] * 10 + [0]
    # values beyond the reference's range fall into the outer bins, missing into its own
    assert binning.codes(pd.Series([-5.0, 1e9, np.nan])).tolist() == [0, 9, 10]


def test_ties_collapse_edges_and_sparse_bins_merge() -> None:
    values = pd.Series(np.r_[np.zeros(600), np.arange(1.0, 401.0)])
    binning = fit_binning(values, bins=10, min_bin_count=50)
    counts = np.bincount(binning.codes(values), minlength=binning.bins)[:-1]
    assert counts[0] == 600 + 0 or counts[0] >= 600  # every zero in one bin
    assert (counts >= 50).all(), counts  # no bin under the minimum count
    assert len(counts) < 10


def test_few_distinct_values_get_a_bin_each() -> None:
    reference = pd.Series([0, 1, 2] * 50)
    binning = fit_binning(reference, bins=10, min_bin_count=5)
    assert binning.bins == 4  # 0, 1, 2 and missing
    assert binning.codes(pd.Series([0, 1, 2, 7])).tolist() == [0, 1, 2, 2]  # 7 joins 2
    flags = fit_binning(pd.Series([True, False] * 30), bins=10, min_bin_count=5)
    assert flags.codes(pd.Series([False, True])).tolist() == [0, 1]


def test_categories_sparse_and_unseen_share_other() -> None:
    reference = pd.Series(["a"] * 100 + ["b"] * 100 + ["c"] * 3)
    binning = fit_binning(reference, bins=10, min_bin_count=5)
    assert binning.labels == ("a", "b", "other", "missing")
    assert binning.codes(pd.Series(["a", "c", "d", None])).tolist() == [0, 2, 2, 3]


def test_a_column_arriving_empty_is_an_act_level_drift() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=5_000)})
    current = pd.DataFrame({"x": np.where(rng.random(5_000) < 0.2, np.nan, rng.normal(size=5_000))})
    table = drift_table(reference, current, {"x": "feature"}, POLICY)
    assert table.loc[0, "band"] == ACT
    same = drift_table(
        reference, reference.sample(frac=1, random_state=1), {"x": "feature"}, POLICY
    )
    assert same.loc[0, "psi"] == pytest.approx(0.0, abs=1e-12)
    assert same.loc[0, "band"] == OK


def test_bands_from_the_policy() -> None:
    reference = pd.DataFrame({"x": np.r_[np.zeros(500), np.ones(500)]})
    current = pd.DataFrame({"x": np.r_[np.zeros(350), np.ones(650)]})
    value = psi([500, 500], [350, 650])  # 0.0915: below 0.1
    table = drift_table(reference, current, {"x": "feature"}, POLICY)
    assert table.loc[0, "psi"] == pytest.approx(value, rel=1e-9)
    assert table.loc[0, "band"] == OK
    strict = MonitoringPolicy(min_bin_count=5, watch=0.05, act=0.5)
    assert drift_table(reference, current, {"x": "feature"}, strict).loc[0, "band"] == WATCH


def test_small_groups_are_reported_never_alarmed() -> None:
    rng = np.random.default_rng(1)
    n = 4_000
    reference = pd.DataFrame(
        {"x": rng.normal(size=n), "tier": np.where(np.arange(n) < 50, "rare", "common")}
    )
    shifted = rng.normal(size=n)
    shifted[:50] += 3  # the rare group moves far, the common one not at all
    current = pd.DataFrame({"x": shifted, "tier": reference["tier"]})
    table = drift_table(reference, current, {"x": "feature"}, POLICY, ["tier", "absent"])
    rows = table.set_index("segment")
    assert set(rows.index) == {"all", "tier=common", "tier=rare"}
    assert rows.loc["tier=rare", "psi"] > 1  # a huge PSI…
    assert rows.loc["tier=rare", "band"] == TOO_SMALL  # …in 50 customers: not an alarm
    assert rows.loc["tier=rare", "floor"] == pytest.approx(
        sampling_floor(50, 50, rows.loc["tier=rare", "bins"])
    )
    assert rows.loc["tier=common", "band"] == OK
    assert rows.loc["tier=common", "n_reference"] == n - 50


def test_sampling_floor_is_the_95th_percentile_of_psi_without_shift() -> None:
    """(1/n + 1/m)·χ²₀.₉₅(B − 1) against PSI simulated with no shift at all."""
    rng = np.random.default_rng(2)
    shares = np.full(10, 0.1)
    n, m = 200, 1_000
    draws = [psi(rng.multinomial(n, shares), rng.multinomial(m, shares)) for _ in range(4_000)]
    floor = float(sampling_floor(n, m, 10))
    assert floor == pytest.approx((1 / n + 1 / m) * 16.919, rel=1e-3)
    # the χ² approximation of PSI is asymptotic: agreement within 15% at these sizes
    assert np.percentile(draws, 95) == pytest.approx(floor, rel=0.15)
