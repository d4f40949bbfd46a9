"""A fitted calibration: raw booster probability → calibrated probability. Plain JSON, never
pickled. The arithmetic lives in ``models.retain_pyfunc``, the module shipped with every model,
so MLflow's loader and retain apply the same function."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.retain_pyfunc import EPS, calibrate, logit

__all__ = ["EPS", "Calibrator", "logit"]


@dataclass(frozen=True)
class Calibrator:
    """``method`` is ``isotonic`` (x/y knots, linear in between) or ``platt`` (a, b on logit)."""

    method: str
    params: dict

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return calibrate(raw, self.to_json())

    def to_json(self) -> dict:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_json(cls, payload: dict) -> Calibrator:
        return cls(method=payload["method"], params=payload["params"])
