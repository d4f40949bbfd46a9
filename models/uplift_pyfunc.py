"""The effect of a call, from native LightGBM boosters, for MLflow's ``python_function`` loader.

Travels inside every registered ``uplift`` model (``code/uplift_pyfunc.py``), so that
``mlflow.pyfunc.load_model("models:/uplift@champion").predict(frame)`` returns what retain's own
scoring returns: τ(x) = P(churn | not called) − P(churn | called), a reduction of the churn
probability (negative where a call pushes a customer away). Self-contained (lightgbm, numpy,
pandas, json); nothing is unpickled. The model directory holds ``uplift.json`` —

    {"learner": "t" | "x" | "dr" | "shift" | "r", "features": [...],
     "boosters": {"<name>": "<sha256>"}, "weight": g}

— and one ``<name>.lgb`` booster in LightGBM's native text per entry:

- ``t``: ``control`` and ``treated`` outcome models, τ = control(x) − treated(x);
- ``x``: ``tau_control`` and ``tau_treated`` effect models, τ = g·tau_control + (1 − g)·
  tau_treated with ``g`` the share of calls the policy made (the known propensity);
- ``dr``: one ``tau`` effect model fitted on doubly robust pseudo-outcomes;
- ``shift``: the ``control`` outcome model μ₀ and the ``shift`` a call adds to the log-odds
  (learned from the initial score logit μ₀): τ = μ₀ − σ(logit μ₀ + shift(x)).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import lightgbm as lgb

SPEC_FILE = "uplift.json"
PARTS = {
    "t": ("control", "treated"),
    "x": ("tau_control", "tau_treated"),
    "dr": ("tau",),
    "shift": ("control", "shift"),
    "r": ("tau",),
}
PROBABILITY_RANGE = (1e-6, 1 - 1e-6)  # kept off 0 and 1 before a logit


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def booster_file(name: str) -> str:
    return f"{name}.lgb"


def effect(boosters: dict[str, lgb.Booster], spec: dict, inputs) -> np.ndarray:
    """τ for inputs in the model's column order."""
    learner = spec["learner"]
    if learner == "t":
        return boosters["control"].predict(inputs) - boosters["treated"].predict(inputs)
    if learner == "x":
        g = float(spec["weight"])
        return g * boosters["tau_control"].predict(inputs) + (1 - g) * boosters[
            "tau_treated"
        ].predict(inputs)
    if learner in ("dr", "r"):
        return np.asarray(boosters["tau"].predict(inputs), dtype="float64")
    if learner == "shift":
        control = np.clip(boosters["control"].predict(inputs), *PROBABILITY_RANGE)
        called = logit(control) + boosters["shift"].predict(inputs, raw_score=True)
        return control - 1 / (1 + np.exp(-called))
    raise ValueError(f"unknown uplift learner {learner!r}: expected one of {sorted(PARTS)}")


def input_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"{len(missing)} input columns are missing, e.g. {missing[:5]}")
    return frame[list(features)].to_numpy(dtype=np.float64, na_value=np.nan)


class UpliftModel:
    """``predict(frame)`` → τ for each row."""

    def __init__(self, boosters: dict[str, lgb.Booster], spec: dict):
        self.boosters, self.spec = boosters, spec
        self.features = list(spec["features"])

    def predict(self, frame: pd.DataFrame, params=None) -> np.ndarray:
        return effect(self.boosters, self.spec, input_matrix(frame, self.features))


def read_model_dir(folder: str | Path) -> UpliftModel:
    import lightgbm as lgb  # here, not above: in retain's processes, models.boosters' import

    folder = Path(folder)
    spec = json.loads((folder / SPEC_FILE).read_text("utf-8"))
    boosters = {
        name: lgb.Booster(model_file=str(folder / booster_file(name))) for name in spec["boosters"]
    }
    return UpliftModel(boosters, spec)


def _load_pyfunc(path: str) -> UpliftModel:
    """MLflow's entry point (``loader_module``)."""
    return read_model_dir(path)
