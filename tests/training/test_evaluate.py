"""The oracle guard: chance is not leakage, a copied label is."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.dataset import LeakageError
from training.evaluate import evaluate, paired_auc_difference_se, refuse_beating_the_oracle


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
