"""Metrics on the test set, against baselines and — on a synthetic bank — against the truth."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from training.dataset import LeakageError

LIFT_SHARES = (0.05, 0.10, 0.20)
ORACLE_TOLERANCE = 0.005


def calibration_bin(p: np.ndarray, bins: int = 10) -> np.ndarray:
    """The equal-width bin of each probability: ``[0, 1/bins), [1/bins, 2/bins), ...`` with
    1.0 in the last one (the ECE and the calibration plot bin alike)."""
    return np.minimum((np.asarray(p) * bins).astype(int), bins - 1)


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins, weighted by bin size."""
    index = calibration_bin(p, bins)
    total = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            total += in_bin.sum() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(total / len(y))


def top_share(scores: np.ndarray, share: float) -> np.ndarray:
    """Mask of the ``share`` highest scores (ties broken by position, deterministic)."""
    n = max(1, int(round(share * len(scores))))
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:n]] = True
    return mask


def lift_and_capture(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    out = {}
    base = y.mean()
    for share in LIFT_SHARES:
        top = top_share(scores, share)
        pct = int(round(share * 100))
        out[f"lift_at_{pct}"] = float(y[top].mean() / base)
        out[f"capture_at_{pct}"] = float(y[top].sum() / y.sum())
    return out


def value_captured(
    y: np.ndarray, scores: np.ndarray, value: np.ndarray, share: float = 0.10
) -> float:
    """Share of the value lost to actual positives that sits in the top ``share`` by score."""
    value = np.nan_to_num(np.asarray(value, dtype="float64"))
    lost = y * value
    return (
        float(lost[top_share(scores, share)].sum() / lost.sum()) if lost.sum() > 0 else float("nan")
    )


def ranking_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """How well ``scores`` rank the test rows — all a baseline's scores, which need not be
    probabilities, are measured by."""
    return {
        "test_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        **lift_and_capture(y, scores),
    }


def evaluate(
    y: np.ndarray, p: np.ndarray, value: np.ndarray | None = None, truth: np.ndarray | None = None
) -> dict[str, float]:
    """Test metrics; with ``truth`` also the oracle AUC on the same rows and the ratio to it."""
    ranking = ranking_metrics(y, p)
    metrics = {
        "test_auc": ranking.pop("test_auc"),
        "pr_auc": ranking.pop("pr_auc"),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": ece(y, p),
        **ranking,
    }
    if value is not None:
        metrics["value_captured_at_10"] = value_captured(y, p, value)
    if truth is not None and not np.isnan(truth).all():
        known = ~np.isnan(truth)
        oracle = float(roc_auc_score(y[known], truth[known]))
        metrics["oracle_auc"] = oracle
        metrics["auc_to_oracle"] = metrics["test_auc"] / oracle
        se = paired_auc_difference_se(y[known], p[known], truth[known])
        metrics["oracle_margin"] = max(ORACLE_TOLERANCE, 2 * se)
    return metrics


def paired_auc_difference_se(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of AUC(a) − AUC(b) on the same rows (DeLong et al., 1988).

    The two scores are strongly correlated (a model and the truth it approximates), so this
    is far smaller than either AUC's own standard error.
    """
    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return float("inf")
    v10, v01 = [], []
    for score in (np.asarray(a, float), np.asarray(b, float)):
        pos, neg = score[y], score[~y]
        combined = rankdata(np.concatenate([pos, neg]))
        v10.append((combined[:m] - rankdata(pos)) / n)
        v01.append(1.0 - (combined[m:] - rankdata(neg)) / m)
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / n
    return float(np.sqrt(max(variance, 0.0)))


def refuse_beating_the_oracle(metrics: dict[str, float], label: str) -> None:
    """No model can beat the true probabilities; one that does has seen the answer.

    "Beats" means by more than 0.005 AUC and by more than two standard errors of the paired
    difference: on a small test set (a rare product, a few dozen buyers) chance alone moves a
    model's AUC past the oracle's by more than 0.005, and that is not leakage.
    """
    oracle = metrics.get("oracle_auc")
    margin = metrics.get("oracle_margin", ORACLE_TOLERANCE)
    if oracle is not None and metrics["test_auc"] > oracle + margin:
        raise LeakageError(
            f"{label}: test AUC {metrics['test_auc']:.4f} beats the oracle AUC {oracle:.4f} by "
            f"more than {margin:.4f} (0.005 or two standard errors of the difference, whichever "
            "is larger): probable leakage — check the feature file for columns that look past "
            "the cutoff or copy the label"
        )
