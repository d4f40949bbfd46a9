"""The CBPE estimate (by hand, by simulation, and against realised AUC on matured cutoffs) and
the control group's interval."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.control import control_effect, newcombe_difference
from monitoring.estimate import auc_interval, estimate, expected_auc
from monitoring.realised import hanley_mcneil_se, realised

MATURED = [date(2024, 7, 31), date(2024, 8, 31), date(2024, 9, 30)]


def test_expected_auc_by_hand() -> None:
    # pairs (positive i, negative j), i ≠ j: (0.8, 0.2) is right with 0.8·0.8, wrong with 0.2·0.2
    assert expected_auc(np.array([0.2, 0.8])) == pytest.approx(0.64 / 0.68)
    # ties count one half
    assert expected_auc(np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert expected_auc(np.array([0.1, 0.1, 0.9])) == pytest.approx(
        (2 * 0.9 * 0.9 + 0.5 * 2 * 0.1 * 0.9) / (1.1 * 1.9 - 2 * 0.09 - 0.09)
    )


def test_expected_auc_is_the_mean_auc_of_labels_drawn_from_p() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(0.5, 6, size=3_000)
    draws = []
    for _ in range(300):
        y = rng.random(len(p)) < p
        draws.append(roc_auc_score(y, p))
    assert expected_auc(p) == pytest.approx(np.mean(draws), abs=0.003)
    low, high = auc_interval(p)
    inside = np.mean([low <= d <= high for d in draws])
    assert 0.9 <= inside <= 0.99  # a 95% interval, from 100 draws of its own
    est = estimate(p, value=np.ones(len(p)))
    assert est["estimated_churn_rate"] == pytest.approx(p.mean())
    assert est["estimated_value_captured_at_10"] == pytest.approx(
        np.sort(p)[::-1][:300].sum() / p.sum()
    )


def test_hanley_mcneil_se_shrinks_with_size() -> None:
    assert hanley_mcneil_se(0.8, 400, 4_000) < hanley_mcneil_se(0.8, 40, 400)
    # Q1 = 0.8/1.2, Q2 = 2·0.64/1.8: (0.16 + 39·(Q1 − 0.64) + 399·(Q2 − 0.64)) / (40·400)
    assert hanley_mcneil_se(0.8, 40, 400) == pytest.approx(np.sqrt(29.5733 / 16_000), rel=1e-4)


def test_newcombe_interval_matches_the_paper() -> None:
    """Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10."""
    difference, low, high = newcombe_difference(56, 70, 48, 80)
    assert (round(difference, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    _, low, high = newcombe_difference(9, 10, 3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1705, 0.8090)


def test_control_against_treated_counts_and_saved() -> None:
    scored = pd.DataFrame(
        {
            "list_group": ["treated"] * 80 + ["control"] * 70 + [None] * 10,
            "label_churn": [1] * 48 + [0] * 32 + [1] * 56 + [0] * 14 + [1] * 10,
            "contribution_12m": [1_000.0] * 79 + [-500.0] + [2_000.0] * 80,
        }
    )
    effect = control_effect(scored)
    assert (effect["treated_labelled"], effect["treated_churned"]) == (80, 48)
    assert (effect["control_labelled"], effect["control_churned"]) == (70, 56)
    assert effect["difference"] == pytest.approx(0.2)
    assert effect["difference_low"] == pytest.approx(0.0524, abs=1e-4)
    assert effect["customers_saved"] == pytest.approx(0.2 * 80)
    assert effect["customers_saved_high"] == pytest.approx(0.3339 * 80, abs=0.01)
    # the treated's value, a loss counted as nothing: 79 × 1,000 saved at the difference's rate
    assert effect["contribution_saved"] == pytest.approx(0.2 * 79_000)
    unlabelled = control_effect(scored.assign(label_churn=None))
    assert unlabelled == {"treated": 80, "control": 70, "matured": False}
    assert control_effect(scored.assign(list_group="treated")) is None


def _matured_rows(demo) -> dict[date, pd.DataFrame]:
    root, _ = demo
    features = pd.read_parquet(root / "features.parquet")
    known = features["eligible_churn"].fillna(False) & features["label_churn"].notna()
    return {c: features[known & (features["cutoff"] == c)] for c in MATURED}


def test_cbpe_of_calibrated_probabilities_is_within_003_of_the_realised_auc(demo) -> None:
    """The estimator itself: with probabilities calibrated by construction (the synthetic
    bank's true churn probabilities), the expected AUC is within 0.03 of the AUC the labels
    give, on every matured cutoff of the demo bank (about 100 churners each)."""
    gaps = {}
    for cutoff, rows in _matured_rows(demo).items():
        p = rows["truth_p_churn_3m"].to_numpy(dtype="float64")
        real = realised(rows["label_churn"].to_numpy(dtype=int), p)
        assert real["churners"] > 50, "too few churners for an AUC to mean anything"
        gaps[cutoff.isoformat()] = round(estimate(p)["estimated_auc"] - real["auc"], 4)
    print("estimated − realised AUC:", gaps)
    assert all(abs(g) <= 0.03 for g in gaps.values()), gaps


def test_champion_estimate_is_within_003_of_the_realised_auc_on_matured_cutoffs(
    demo, demo_models
) -> None:
    """The acceptance as written: the champion's CBPE estimate within 0.03 of the realised AUC
    on each matured cutoff 2024-07..09 (out of sample: trained before 2024-04, calibrated on
    2024-06). It failed on the bank's previous draw (gaps −0.041, −0.037, −0.003, the
    calibration fitted on one validation month); issue "uplift" item 7 makes calibration hold
    out of time on every bank."""
    gaps = {}
    for cutoff, rows in _matured_rows(demo).items():
        p = demo_models.models.churn.predict(rows)
        real = realised(rows["label_churn"].to_numpy(dtype=int), p)
        gaps[cutoff.isoformat()] = round(estimate(p)["estimated_auc"] - real["auc"], 4)
    print("champion: estimated − realised AUC:", gaps)
    assert all(abs(g) <= 0.03 for g in gaps.values()), gaps
