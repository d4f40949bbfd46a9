"""Metrics on the test set, against baselines and — on a synthetic bank — against the truth."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from training.dataset import LeakageError

LIFT_SHARES = (0.05, 0.10, 0.20)
ORACLE_TOLERANCE = 0.005


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins, weighted by bin size."""
    index = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
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


def evaluate(y: np.ndarray, p: np.ndarray, value: np.ndarray | None = None,
             truth: np.ndarray | None = None) -> dict[str, float]:  # fmt: skip
    """Test metrics; with ``truth`` also the oracle AUC on the same rows and the ratio to it."""
    metrics = {
        "test_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": ece(y, p),
        **lift_and_capture(y, p),
    }
    if value is not None:
        metrics["value_captured_at_10"] = value_captured(y, p, value)
    if truth is not None and not np.isnan(truth).all():
        known = ~np.isnan(truth)
        oracle = float(roc_auc_score(y[known], truth[known]))
        metrics["oracle_auc"] = oracle
        metrics["auc_to_oracle"] = metrics["test_auc"] / oracle
    return metrics


def refuse_beating_the_oracle(metrics: dict[str, float], label: str) -> None:
    """No model can beat the true probabilities; one that does has seen the answer."""
    oracle = metrics.get("oracle_auc")
    if oracle is not None and metrics["test_auc"] > oracle + ORACLE_TOLERANCE:
        raise LeakageError(
            f"{label}: test AUC {metrics['test_auc']:.4f} beats the oracle AUC {oracle:.4f} by "
            f"more than {ORACLE_TOLERANCE}: probable leakage — check the feature file for "
            "columns that look past the cutoff or copy the label"
        )
