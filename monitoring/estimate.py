"""Performance before the labels exist: what calibrated probabilities promise (confidence-based
performance estimation, in the manner of NannyML's CBPE).

If ``p`` is calibrated, customer ``i`` churns with probability ``p_i``: at every threshold it
adds ``p_i`` to the expected positives and ``1 − p_i`` to the expected negatives, so the ROC
curve, its AUC, the lift of the top decile and the value it captures have expectations without
a single label. The estimate holds under covariate shift (the customers change, the churn
mechanism does not) and breaks under concept drift — which is why realised figures are
compared as soon as labels mature (``monitoring/realised.py``).

The sampling interval is that of the *realised* AUC if the probabilities are right: labels
drawn ``y_i ~ Bernoulli(p_i)`` a hundred times, ranks computed once. A realised AUC outside it
says calibration no longer holds.

Calibration cannot be estimated this way (the expected ECE of calibrated scores is 0 by
assumption); what can be watched is calibration in the large: the mean probability against the
reference's mean probability and, where the reference has labels, its observed churn rate.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from training.evaluate import top_share

DRAWS = 100
INTERVAL = (2.5, 97.5)


def expected_auc(p: np.ndarray) -> float:
    """Expected AUC of calibrated probabilities ``p`` (ties count one half).

    Over ordered pairs of distinct customers, a pair (positive ``i``, negative ``j``) has
    probability ``p_i (1 − p_j)``; the AUC is the expected number of correctly ordered such pairs
    over the expected number of such pairs (a ratio of expectations, as CBPE computes it)."""
    p = np.asarray(p, dtype="float64")
    if len(p) < 2:
        return float("nan")
    values, inverse = np.unique(p, return_inverse=True)  # sorted: ties share a group
    positives = np.bincount(inverse, weights=p, minlength=len(values))
    negatives = np.bincount(inverse, weights=1 - p, minlength=len(values))
    self_pairs = np.bincount(inverse, weights=p * (1 - p), minlength=len(values))
    negatives_below = np.cumsum(negatives) - negatives
    correct = positives @ negatives_below
    tied = 0.5 * (positives @ negatives - self_pairs.sum())
    pairs = p.sum() * (1 - p).sum() - (p * (1 - p)).sum()
    return float((correct + tied) / pairs) if pairs > 0 else float("nan")


def auc_interval(p: np.ndarray, draws: int = DRAWS, seed: int = 0) -> tuple[float, float]:
    """Where the realised AUC falls 95% of the time if ``p`` is calibrated (labels drawn from
    ``p``; the AUC of each draw from ranks computed once)."""
    p = np.asarray(p, dtype="float64")
    if len(p) < 2:
        return float("nan"), float("nan")
    ranks = rankdata(p)
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(draws):
        y = rng.random(len(p)) < p
        n1 = int(y.sum())
        n0 = len(p) - n1
        if n1 and n0:
            aucs.append((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    if not aucs:
        return float("nan"), float("nan")
    low, high = np.percentile(aucs, INTERVAL)
    return float(low), float(high)


def estimate(p: np.ndarray, value: np.ndarray | None = None, share: float = 0.10) -> dict:
    """Every figure the probabilities promise for one month: expected AUC with its interval,
    churn rate with its interval, lift and value captured in the top ``share``."""
    p = np.asarray(p, dtype="float64")
    known = ~np.isnan(p)
    p = p[known]
    value = None if value is None else np.asarray(value, dtype="float64")[known]
    n = len(p)
    if n == 0:
        return {"rows": 0}
    rate = float(p.mean())
    se = float(np.sqrt((p * (1 - p)).sum()) / n)
    low, high = auc_interval(p)
    top = top_share(p, share)
    out = {
        "rows": n,
        "expected_churners": float(p.sum()),
        "estimated_auc": expected_auc(p),
        "estimated_auc_low": low,
        "estimated_auc_high": high,
        "estimated_churn_rate": rate,
        "estimated_churn_rate_low": max(0.0, rate - 1.96 * se),
        "estimated_churn_rate_high": min(1.0, rate + 1.96 * se),
        "estimated_lift_at_10": float(p[top].mean() / rate) if rate > 0 else float("nan"),
    }
    if value is not None:
        v = np.nan_to_num(np.asarray(value, dtype="float64"))
        expected_lost = p * v
        total = expected_lost.sum()
        out["estimated_value_captured_at_10"] = (
            float(expected_lost[top].sum() / total) if total > 0 else float("nan")
        )
    return out
