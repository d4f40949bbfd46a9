"""What a model must beat, on the same rows in the same run: LightGBM with the library's
defaults (and early stopping), logistic regression, and the bank's rule of thumb."""

from __future__ import annotations

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.config import TierLadder
from features.targets import Target
from models.boosters import lgb
from training.dataset import Dataset, Split
from training.train import TrainConfig

LIBRARY_DEFAULTS_MAX_ROUNDS = 2_000


def lightgbm_defaults(ds: Dataset, config: TrainConfig) -> np.ndarray:
    """LightGBM as it comes (31 leaves, no depth limit, rate 0.1), stopped early on the same
    validation cutoff: what a data scientist gets in an hour without our defaults."""
    params = {
        "objective": "binary",
        "metric": "auc",
        "verbosity": -1,
        "seed": config.seed,
        "deterministic": True,
        "num_threads": config.num_threads,
    }
    train = lgb.Dataset(ds.train.x, label=ds.train.y)
    valid = lgb.Dataset(ds.valid.x, label=ds.valid.y, reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=LIBRARY_DEFAULTS_MAX_ROUNDS,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    return booster.predict(ds.test.x)


def logistic_regression(train: Split, test: Split) -> np.ndarray:
    """A scikit-learn pipeline fitted on the training split only; scores the test split."""
    model = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2000)
    )
    model.fit(train.x, train.y)
    return model.predict_proba(test.x)[:, 1]


def rule_of_thumb(target: Target, train: Split, test: Split, tiers: TierLadder) -> np.ndarray:
    """Churn: the steepest 3-month AUM decline first. Cross-sell: the product's holding rate
    in the customer's tier (learned on train). Upgrade: closest to the next tier's bound."""
    rows = test.rows
    if target.kind == "churn":
        return -rows["aum_change_3m"].fillna(0).to_numpy()
    if target.kind == "cross_sell":
        held = train.rows[target.holds].fillna(False).astype(bool)
        rate = held.groupby(train.rows["tier"]).mean()
        return rows["tier"].map(rate).fillna(held.mean()).to_numpy(dtype="float64")
    bounds = np.array([*tiers.bounds, np.inf])
    level = rows["tier_level"].to_numpy(dtype=int)
    return rows["aum_avg_1m"].to_numpy() / bounds[np.minimum(level, len(bounds) - 1)]


def baseline_scores(
    target: Target, ds: Dataset, tiers: TierLadder, config: TrainConfig
) -> dict[str, np.ndarray]:
    return {
        "lightgbm_defaults": lightgbm_defaults(ds, config),
        "logistic_regression": logistic_regression(ds.train, ds.test),
        "rule_of_thumb": rule_of_thumb(target, ds.train, ds.test, tiers),
    }
