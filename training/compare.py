"""How one model's test figures compare with another's, in numbers and in words — the model card
(against the baselines) and the promotion gate (challenger against champion) say it alike.

A figure is *above* or *below* the other's as numbers go; it is *better* or *worse* once the
metric's direction is known (ECE, Brier score and log loss are better lower).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping

LOWER_IS_BETTER = ("ece", "brier", "log_loss")
AUC_KEYS = ("test_auc", "auc", "roc_auc")
METRIC_LABELS = {
    "pr_auc": "PR AUC (average precision)",
    "brier": "Brier score",
    "ece": "ECE (calibration error)",
    "log_loss": "log loss",
}
TOP_SHARE_LABELS = {
    "lift": "lift in top {}%",
    "capture": "positives captured in top {}%",
    "value_captured": "value at risk captured in top {}%",
}
SHORT_LABELS = {"pr_auc": "PR AUC", "ece": "ECE", "brier": "Brier score"}
ABOVE, BELOW, EQUAL = "above", "below", "equal"
BETTER, WORSE = "better", "worse"
TIE = 1e-12  # closer than this is equal (float noise, not a difference)


def metric_label(name: str, short: bool = False) -> str:
    """A metric's name for people (``pr_auc`` → "PR AUC (average precision)"; ``short``: "PR
    AUC"); lower-is-better metrics carry ↓ unless ``short``."""
    if name in AUC_KEYS:
        label = "ROC AUC"
    elif short and name in SHORT_LABELS:
        label = SHORT_LABELS[name]
    else:
        label = METRIC_LABELS.get(name)
    if label is None:
        match = re.fullmatch(r"(lift|capture|value_captured)_at_(\d+)", name)
        label = TOP_SHARE_LABELS[match[1]].format(match[2]) if match else name.replace("_", " ")
    return f"{label} ↓" if name in LOWER_IS_BETTER and not short else label


def number(value: object) -> float | None:
    """The value as a float, or None when it is missing or NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def position(value: object, other: object) -> str | None:
    """``above``, ``below`` or ``equal`` as numbers go; None when either is missing."""
    value, other = number(value), number(other)
    if value is None or other is None:
        return None
    if abs(value - other) <= TIE:
        return EQUAL
    return ABOVE if value > other else BELOW


def verdict(name: str, value: object, other: object) -> str | None:
    """``better``, ``worse`` or ``equal`` for metric ``name`` (lower is better for
    ``LOWER_IS_BETTER``); None when either value is missing."""
    where = position(value, other)
    if where in (None, EQUAL):
        return where
    higher_is_better = name not in LOWER_IS_BETTER
    return BETTER if (where == ABOVE) == higher_is_better else WORSE


def verdicts(
    metrics: Mapping[str, object], other: Mapping[str, object], names: Iterable[str]
) -> dict[str, str]:
    """``{metric: better | worse | equal}`` for each of ``names`` both have."""
    found = {name: verdict(name, metrics.get(name), other.get(name)) for name in names}
    return {name: word for name, word in found.items() if word is not None}


def four_decimals(name: str, value: object) -> str:
    return f"{number(value):.4f}"


def in_words(
    metrics: Mapping[str, object],
    other: Mapping[str, object],
    names: Iterable[str],
    whom: str,
    formatted: Callable[[str, object], str] = four_decimals,
) -> str:
    """How ``metrics`` compare with ``whom``'s ``other`` on each of ``names`` both have: where
    they are worse (with both values, as ``formatted(name, value)`` writes them: what a
    reviewer must not miss), better and equal.

    >>> in_words({"pr_auc": 0.337, "test_auc": 0.8}, {"pr_auc": 0.367, "test_auc": 0.79},
    ...          ["test_auc", "pr_auc"], "LightGBM defaults")
    'against LightGBM defaults: worse on PR AUC (0.3370 vs 0.3670); better on ROC AUC'
    """
    words = verdicts(metrics, other, names)
    if not words:
        return f"against {whom}: no metric both report"
    parts = []
    for word in (WORSE, BETTER, EQUAL):
        group = [n for n, w in words.items() if w == word]
        if not group:
            continue
        if word == WORSE:
            listed = [
                f"{metric_label(n, short=True)} ({formatted(n, metrics[n])} vs "
                f"{formatted(n, other[n])})"
                for n in group
            ]
        else:
            listed = [metric_label(n, short=True) for n in group]
        parts.append(f"{word} on {', '.join(listed)}")
    return f"against {whom}: " + "; ".join(parts)
