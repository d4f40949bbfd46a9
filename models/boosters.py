"""LightGBM as retain uses it: ``lgb.train``, ``lgb.Dataset`` and ``lgb.Booster``, never its
scikit-learn estimators — so it is imported without them. Every module of the project takes
``lgb`` from here (tests/models/test_boosters.py checks it).

On import LightGBM looks for scikit-learn, and finding it loads scikit-learn and the half of
SciPy it pulls in: about 1.7 s of CPU before anything is done, paid by every process that
scores — each service worker and the process that starts them, `retain score`, `retain run` —
although none of them uses it (a service worker's imports took 5.3-5.9 CPU-s with it,
3.9-4.1 without).
Marked absent for the length of LightGBM's own import (a ``None`` in ``sys.modules`` is
Python's way to say so), scikit-learn stays importable for the code that needs it (metrics,
calibration) and LightGBM's boosters are the same. What is then missing from LightGBM is its
scikit-learn API and ``lgb.cv``'s stratified folds, neither used here."""

from __future__ import annotations

import importlib
import sys


def _boosters_only():
    if "lightgbm" in sys.modules or "sklearn" in sys.modules:  # loaded already: as it was
        return importlib.import_module("lightgbm")
    sys.modules["sklearn"] = None
    try:
        return importlib.import_module("lightgbm")
    finally:
        del sys.modules["sklearn"]


lgb = _boosters_only()
