"""Registering a trained model: the artifact (through ``models``) and the rows it was tested on,
so that promotion needs nothing but the registry. The MLflow store and the artifact itself live
in ``models/``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from features.catalog import catalog
from models.artifact import LoggedModel, ModelArtifact, log_model
from models.boosters import lgb
from models.calibration import Calibrator
from models.registry import EVALUATION_ROWS

EVALUATION_CAP = 200_000  # rows kept for promotion; more is a seeded sample
EVALUATION_SEED = 0
ID_COLUMNS = ("customer_id", "cutoff")


def evaluation_rows(
    rows: pd.DataFrame, label: str, features: list[str], cap: int = EVALUATION_CAP
) -> pd.DataFrame:
    """The test rows promotion compares models on: ids, cutoff, label and every catalog feature
    present (so an older champion with other inputs can be scored too); at most ``cap`` rows,
    a seeded sample beyond that."""
    known = set(catalog()) | set(features)
    columns = [c for c in ID_COLUMNS if c in rows] + [label]
    columns += [c for c in rows.columns if c in known and c not in columns]
    kept = rows[columns]
    if len(kept) > cap:
        kept = kept.sample(n=cap, random_state=EVALUATION_SEED).sort_index()
    return kept.reset_index(drop=True)


def register_model(
    artifact: ModelArtifact,
    name: str,
    example: pd.DataFrame,
    test_rows: pd.DataFrame | None = None,
    cap: int = EVALUATION_CAP,
) -> LoggedModel:
    """In the active run: log the test rows (``evaluation/test_rows.parquet``, at most ``cap``)
    when given, then log and register the model as ``name`` (alias ``challenger``)."""
    if test_rows is not None:
        label = artifact.metadata["label"]
        rows = evaluation_rows(test_rows, label, artifact.features, cap)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(EVALUATION_ROWS).name
            rows.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), str(Path(EVALUATION_ROWS).parent))
        mlflow.log_params(
            {
                "evaluation_rows": len(rows),
                "evaluation_rows_of": len(test_rows),
                "evaluation_rows_cap": cap,
                "evaluation_rows_seed": EVALUATION_SEED,
            }
        )
    return log_model(artifact, name, example)


def log_booster(
    booster: lgb.Booster, name: str, example: pd.DataFrame, metadata: dict
) -> LoggedModel:
    """A booster with ``metadata["features"]`` and ``metadata["calibration"]`` (JSON or None)
    logged as a model artifact — for callers that hold the parts, not a ``ModelArtifact``."""
    rest = {k: v for k, v in metadata.items() if k not in ("features", "calibration")}
    calibration = metadata.get("calibration")
    artifact = ModelArtifact(
        booster,
        Calibrator.from_json(calibration) if calibration else None,
        list(metadata["features"]),
        rest,
    )
    return log_model(artifact, name, example)
