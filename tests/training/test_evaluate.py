"""The oracle guard (chance is not leakage, a copied label is) and the ECE."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.dataset import LeakageError
from training.evaluate import (
    ece,
    evaluate,
    paired_auc_difference_se,
    refuse_beating_the_oracle,
)


def test_paired_standard_error_matches_the_spread_of_the_difference():
    rng = np.random.default_rng(0)
    diffs, ses = [], []
    for _ in range(200):
        truth = rng.random(2_000) * 0.1
        y = rng.random(2_000) < truth
        model = truth + rng.normal(0, 0.02, truth.size)
        diffs.append(roc_auc_score(y, model) - roc_auc_score(y, truth))
        ses.append(paired_auc_difference_se(y, model, truth))
    assert np.mean(ses) == pytest.approx(np.std(diffs), rel=0.15)


def test_a_small_test_set_beating_the_oracle_by_chance_is_not_leakage():
    rng = np.random.default_rng(4)
    truth = rng.random(800) * 0.08  # ~30 buyers: a rare product on a small bank
    y = (rng.random(800) < truth).astype(int)
    for seed in range(50):  # find a draw where noise beats the oracle by more than 0.005
        model = truth + np.random.default_rng(seed).normal(0, 0.02, truth.size)
        m = evaluate(y, np.clip(model, 0, 1), truth=truth)
        if m["test_auc"] > m["oracle_auc"] + 0.005:
            break
    else:
        pytest.fail("no chance win found")
    assert m["oracle_margin"] > m["test_auc"] - m["oracle_auc"]
    refuse_beating_the_oracle(m, "label_cross_sell_rare")


def test_a_copied_label_still_fails_on_a_small_test_set():
    rng = np.random.default_rng(4)
    truth = rng.random(800) * 0.08
    y = (rng.random(800) < truth).astype(int)
    m = evaluate(y, 0.9 * y + 0.05, truth=truth)
    with pytest.raises(LeakageError, match="probable leakage"):
        refuse_beating_the_oracle(m, "label_churn")


def test_ece_is_zero_when_every_bin_is_calibrated() -> None:
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0] + [1, 1, 1, 0])
    assert ece(y, p) == pytest.approx(0.0)


def test_ece_on_a_hand_example() -> None:
    # bin [0.1, 0.2): mean p 0.1, observed 0.5 -> 0.4 on 2 rows; bin [0.9, 1.0]: p 0.95
    # (0.9 and 1.0 share the last bin), observed 1.0 -> 0.05 on 2 rows; (0.8 + 0.1) / 4
    p = np.array([0.1, 0.1, 0.9, 1.0])
    y = np.array([1, 0, 1, 1])
    assert ece(y, p) == pytest.approx(0.225)
    assert ece(y, p, bins=1) == pytest.approx(abs(0.75 - 0.525))
