"""Calibration chosen out of time (issue "uplift", item 7): fitted on the earlier validation
months, judged by ECE on the latest, refitted on all of them."""

from __future__ import annotations

import numpy as np

from training.calibrate import fit_calibrator, out_of_time_ece


def test_the_method_is_chosen_by_its_ece_on_the_latest_validation_month():
    rng = np.random.default_rng(0)
    n = 6_000
    months = np.repeat(["2024-05-31", "2024-06-30"], n // 2)
    raw = rng.uniform(0.01, 0.6, n)
    # a monotone but not logistic miscalibration: a step isotonic follows, Platt cannot
    truth = np.where(raw < 0.3, 0.02, 0.45)
    y = (rng.random(n) < truth).astype(int)
    scores = out_of_time_ece(raw, y, months)
    assert scores["isotonic"] < scores["platt"]
    calibrator, how = fit_calibrator(raw, y, months=months)
    assert calibrator.method == "isotonic" and how["chosen_by"] == "out_of_time_ece"
    # one month: the cross-validated Brier score chooses, as before
    _, how = fit_calibrator(raw, y)
    assert how["chosen_by"] == "cv_brier"
