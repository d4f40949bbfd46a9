"""Calibration fitted on validation: isotonic or Platt, whichever has the lower Brier score
under cross-validation on the validation set. The fitted ``Calibrator`` belongs to the model
artifact (``models.calibration``): plain JSON, never pickled."""

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


def fit_calibrator(raw: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[Calibrator, dict]:
    """Pick the method with the lower cross-validated Brier score; refit it on all of ``raw``."""
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    brier = {}
    for method in ("isotonic", "platt"):
        errors = []
        for fit_rows, check_rows in folds.split(raw, y):
            calibrated = _fit(method, raw[fit_rows], y[fit_rows]).apply(raw[check_rows])
            errors.append(np.mean((calibrated - y[check_rows]) ** 2))
        brier[method] = float(np.mean(errors))
    best = min(brier, key=brier.get)
    return _fit(best, raw, y), brier
