"""What a model must beat: logistic regression, and the bank's rule of thumb."""

from __future__ import annotations

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.dataset import Split


def logistic_regression(train: Split, test: Split) -> np.ndarray:
    """A scikit-learn pipeline fitted on the training split only; scores the test split."""
    model = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2000)
    )
    model.fit(train.x, train.y)
    return model.predict_proba(test.x)[:, 1]


def rule_of_thumb(label: str, train: Split, test: Split) -> np.ndarray:
    """Churn: the steepest 3-month AUM decline first. Cross-sell: the product's holding rate
    in the customer's tier (learned on train). Upgrade: closest to the next tier's bound."""
    rows = test.rows
    if label == "label_churn":
        return -rows["aum_change_3m"].fillna(0).to_numpy()
    if label.startswith("label_cross_sell_"):
        product = label.removeprefix("label_cross_sell_")
        held = train.rows[f"balance_{product}"].fillna(0) > 0
        rate = held.groupby(train.rows["tier"]).mean()
        return rows["tier"].map(rate).fillna(held.mean()).to_numpy(dtype="float64")
    if label == "label_upgrade":
        bounds = np.array([10_000, 100_000, 300_000, 1_000_000, 6_000_000, np.inf])
        level = rows["tier_level"].to_numpy(dtype=int)
        return rows["aum_avg_1m"].to_numpy() / bounds[np.minimum(level, len(bounds) - 1)]
    raise ValueError(f"no rule of thumb for {label}")


def baseline_scores(label: str, train: Split, test: Split) -> dict[str, np.ndarray]:
    return {
        "logistic_regression": logistic_regression(train, test),
        "rule_of_thumb": rule_of_thumb(label, train, test),
    }
