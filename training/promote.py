"""Champion and challenger: score both on the same latest test set, promote only if no worse."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from training.calibrate import Calibrator
from training.dataset import as_inputs
from training.evaluate import ece
from training.register import CHALLENGER, CHAMPION, RegistryError, load_verified, set_champion

MAX_AUC_LOSS = 0.002
MAX_ECE_GAIN = 0.01


def predict_calibrated(booster, metadata: dict, frame: pd.DataFrame) -> np.ndarray:
    """Calibrated probabilities from a verified booster and the metadata logged with it."""
    raw = booster.predict(as_inputs(frame, metadata["features"]))
    return Calibrator.from_json(metadata["calibration"]).apply(raw)


def latest_test_rows(name: str, version: str, label: str) -> pd.DataFrame:
    """The labelled rows of the last cutoff of the feature file the challenger was trained on."""
    client = MlflowClient()
    run_id = client.get_model_version(name, version).run_id
    path = client.get_run(run_id).data.params.get("features_path")
    if not path:
        raise RegistryError(f"{name} version {version} does not record its feature file")
    try:
        frame = pd.read_parquet(path)
    except (FileNotFoundError, OSError) as exc:
        raise RegistryError(f"feature file {path} of {name} v{version} is gone: {exc}") from exc
    frame = frame[frame[label].notna()]
    return frame[frame["cutoff"] == frame["cutoff"].max()]


def no_worse(challenger: dict, champion: dict) -> tuple[bool, float, float]:
    """The gate: AUC not worse by more than 0.002 and ECE not worse by more than 0.01."""
    auc_change = challenger["auc"] - champion["auc"]
    ece_change = challenger["ece"] - champion["ece"]
    passes = auc_change >= -MAX_AUC_LOSS - 1e-12 and ece_change <= MAX_ECE_GAIN + 1e-12
    return passes, auc_change, ece_change


def promote(name: str, force: bool = False) -> dict:
    """Move ``champion`` to the challenger if its AUC is not worse by more than 0.002 and its
    ECE not worse by more than 0.01 on the same test rows (or if ``force``)."""
    challenger = load_verified(name, CHALLENGER)
    try:
        champion = load_verified(name, CHAMPION)
    except RegistryError:
        champion = None
    decision = {"model": name, "challenger": challenger.version}
    if champion is None or champion.version == challenger.version:
        set_champion(name, challenger.version)
        reason = "no champion yet" if champion is None else "already champion"
        return {**decision, "champion": challenger.version, "promoted": True, "reason": reason}
    label = challenger.metadata["label"]
    rows = latest_test_rows(name, challenger.version, label)
    y = rows[label].to_numpy(dtype=int)
    measured = {}
    for role, model in (("challenger", challenger), ("champion", champion)):
        p = predict_calibrated(model.booster, model.metadata, rows)
        measured[role] = {"version": model.version, "auc": float(roc_auc_score(y, p)),
                          "ece": ece(y, p)}  # fmt: skip
    passes, auc_change, ece_change = no_worse(measured["challenger"], measured["champion"])
    promoted = passes or force
    if promoted:
        set_champion(name, challenger.version)
    reason = "no worse than the champion" if passes else (
        f"worse than the champion (AUC {auc_change:+.4f}, ECE {ece_change:+.4f})"
        + (" — promoted anyway (--force)" if force else ""))  # fmt: skip
    return {**decision, "champion": challenger.version if promoted else champion.version,
            "promoted": promoted, "reason": reason, "rows": len(y), "test_cutoff":
            str(rows["cutoff"].iloc[0]), "comparison": measured}  # fmt: skip
