"""Calibrated LightGBM probabilities for MLflow's ``python_function`` loader.

This file travels inside every registered model (``code/retain_pyfunc.py``) and is the
``loader_module`` of the model's ``python_function`` flavour, so that
``mlflow.pyfunc.load_model("models:/churn@champion").predict(frame)`` returns what retain's
own scoring returns: the booster's probability passed through the calibration trained with it.

It is self-contained on purpose — lightgbm, numpy, pandas and json only — because a model must
load where retain is not installed (``mlflow models serve``, a notebook elsewhere). It reads
three plain files from the model directory and never unpickles anything:

- ``model.lgb``: the booster in LightGBM's native text format;
- ``calibration.json``: ``{"method": "isotonic", "params": {"x": [...], "y": [...]}}``,
  ``{"method": "platt", "params": {"a": ..., "b": ...}}`` or ``null`` (no calibration);
- ``features.json``: ``{"features": [...]}``, the input columns in the booster's order.

retain's ``models`` package uses the same functions, so there is one prediction path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Callable

    import lightgbm as lgb

BOOSTER_FILE = "model.lgb"
CALIBRATION_FILE = "calibration.json"
FEATURES_FILE = "features.json"
EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def calibrate(raw: np.ndarray, calibration: dict | None) -> np.ndarray:
    """Calibrated probabilities from raw booster probabilities (``None``: unchanged)."""
    raw = np.asarray(raw, dtype="float64")
    if calibration is None:
        return raw
    method, params = calibration["method"], calibration["params"]
    if method == "isotonic":
        return np.interp(raw, params["x"], params["y"])
    if method == "platt":
        return 1 / (1 + np.exp(-(params["a"] * logit(raw) + params["b"])))
    raise ValueError(f"unknown calibration method {method!r}: expected isotonic or platt")


def input_matrix(frame: pd.DataFrame, features: list[str]):
    """The booster's inputs: one float64 matrix (booleans 0/1, missing NaN) when every column is
    numeric; otherwise the columns themselves with text as categories, so LightGBM maps them to
    the categories it was trained with (the signature carries categories as text)."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(
            f"{len(missing)} of the model's {len(features)} input columns are missing, "
            f"e.g. {missing[:5]}"
        )
    part = frame[list(features)]
    text = [c for c, t in part.dtypes.items() if not _numeric(t)]
    if not text:
        return part.to_numpy(dtype=np.float64, na_value=np.nan)
    return part.astype(dict.fromkeys(text, "category"))


def _numeric(dtype) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


class CalibratedBooster:
    """A booster, its calibration and its input columns: ``predict(frame)`` → probabilities."""

    def __init__(
        self,
        booster: lgb.Booster,
        calibration: dict | None,
        features: list[str],
        raw: Callable | None = None,
    ):
        self.booster = booster
        self.calibration = calibration
        self.features = list(features)
        # the booster's probabilities: ``booster.predict``, or the same bits computed another
        # way (retain's ``models.compiled_trees`` for many rows)
        self.raw = raw or booster.predict

    def predict_inputs(self, inputs) -> np.ndarray:
        """Calibrated probabilities from inputs already in the model's column order."""
        return calibrate(self.raw(inputs), self.calibration)

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.predict_inputs(input_matrix(model_input, self.features))


def read_model_dir(path: str | Path) -> CalibratedBooster:
    """Load the three files of a model directory (no check of their hashes: see retain's
    ``models.artifact.load_verified`` for that)."""
    import lightgbm as lgb  # here, not above: in retain's processes, models.boosters' import

    folder = Path(path)
    if folder.is_file():  # a flavour may point at the booster file itself
        folder = folder.parent
    booster = lgb.Booster(model_file=str(folder / BOOSTER_FILE))
    calibration = json.loads((folder / CALIBRATION_FILE).read_text(encoding="utf-8"))
    features = json.loads((folder / FEATURES_FILE).read_text(encoding="utf-8"))["features"]
    return CalibratedBooster(booster, calibration, features)


def _load_pyfunc(path: str) -> CalibratedBooster:
    """Called by ``mlflow.pyfunc.load_model`` with the model directory."""
    return read_model_dir(path)
