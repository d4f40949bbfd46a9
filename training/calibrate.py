"""Calibration fitted on the validation months: isotonic or Platt, chosen out of time — each
fitted on the earlier validation months and judged by its ECE on the latest (what the next,
unseen month asks of it), then the chosen one refitted on every validation month. With a
single validation month, the lower Brier score under cross-validation chooses. The fitted
``Calibrator`` belongs to the model artifact (``models.calibration``): plain JSON, never
pickled."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from models.calibration import Calibrator, logit


def _fit(method: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y)
        return Calibrator(
            "isotonic", {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        )
    lr = LogisticRegression(C=1e6).fit(logit(raw)[:, None], y)
    return Calibrator("platt", {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])})


METHODS = ("isotonic", "platt")


def fit_calibrator(
    raw: np.ndarray, y: np.ndarray, seed: int = 0, months: np.ndarray | None = None
) -> tuple[Calibrator, dict]:
    """The calibration of ``raw`` (the booster's probabilities on the validation rows) and how
    it was chosen: ``months`` (each row's cutoff) with two or more months → by out-of-time ECE
    on the latest; else by cross-validated Brier score. Refitted on all of ``raw``."""
    if months is not None and len(np.unique(months)) > 1:
        scores = out_of_time_ece(raw, y, np.asarray(months))
        best = min(scores, key=scores.get)
        return _fit(best, raw, y), {"chosen_by": "out_of_time_ece", **scores}
    return _by_brier(raw, y, seed)


def out_of_time_ece(raw: np.ndarray, y: np.ndarray, months: np.ndarray) -> dict[str, float]:
    """Each method fitted on all validation months but the latest, its ECE on the latest."""
    from training.evaluate import ece

    latest = months == max(months)  # month-end dates as text sort as dates
    return {
        method: float(ece(y[latest], _fit(method, raw[~latest], y[~latest]).apply(raw[latest])))
        for method in METHODS
    }


def _by_brier(raw: np.ndarray, y: np.ndarray, seed: int) -> tuple[Calibrator, dict]:
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    brier = {}
    for method in METHODS:
        errors = []
        for fit_rows, check_rows in folds.split(raw, y):
            calibrated = _fit(method, raw[fit_rows], y[fit_rows]).apply(raw[check_rows])
            errors.append(np.mean((calibrated - y[check_rows]) ** 2))
        brier[method] = float(np.mean(errors))
    best = min(brier, key=brier.get)
    return _fit(best, raw, y), {"chosen_by": "cv_brier", **brier}
