"""What monitoring reads: a scored month, or a model's test rows, as one frame per side.

The reference is one of:

- a scores directory (``retain score --out``: ``scores.parquet`` + ``features.parquet``);
- a month-end date, read as ``<runs_dir>/<date>/scores``;
- the MLflow run id (32 hex digits) of a model's training run: its logged test rows
  (``evaluation/test_rows.parquet``: ids, cutoff, label, every catalog feature, no scores) are
  scored with the same model versions that scored the current month, so score drift measures
  the data, not a change of model. Those rows are the customers the run's label is defined for
  (churn: eligible customers), so the current month is cut to the same population; they carry
  no branch, so there is no branch segment.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.catalog import feature_names
from features.config import BankConfig
from features.products import read_products_metadata
from models.artifact import load_verified
from models.registry import RegistryError
from monitoring.realised import LABEL

SCORES, FEATURES = "scores.parquet", "features.parquet"
EVALUATION_ROWS = "evaluation/test_rows.parquet"
SCORE_COLUMNS = re.compile(r"^(p_|propensity_)")
# what drift, estimates and populations read of a month besides the catalogue's features
FRAME_COLUMNS = (
    "customer_id",
    "cutoff",
    "eligible_churn",
    "tier",
    "tier_level",
    "contribution_12m",
    LABEL,
)


class MonitorError(ValueError):
    """Inputs monitoring cannot use, named in one line."""


@dataclass
class Side:
    """One side of the comparison: rows with features and scores, where they came from."""

    label: str
    cutoff: str | None
    frame: pd.DataFrame
    versions: dict[str, str] = field(default_factory=dict)
    population: str | None = None  # the label whose population the rows are (run references)


# --- reading -----------------------------------------------------------------------------


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The model scores: ``p_churn``, ``p_upgrade``, ``propensity_<product>``."""
    return [c for c in frame.columns if SCORE_COLUMNS.match(c) and frame[c].dtype.kind == "f"]


def model_of(score: str) -> str:
    """The registered model behind a score column."""
    if score.startswith("propensity_"):
        return "cross_sell_" + score.removeprefix("propensity_")
    return score.removeprefix("p_")


def read_scored(folder: Path, segments: tuple[str, ...] = ()) -> Side:
    """A ``retain score`` output directory as one frame: the catalogue's features, the columns
    that define who a model is for, ``segments`` and every score (joined by customer id)."""
    folder = Path(folder)
    missing = [name for name in (SCORES, FEATURES) if not (folder / name).is_file()]
    if missing:
        raise MonitorError(
            f"{folder} is not a scores directory: {', '.join(missing)} missing "
            "(write one with retain score --out)"
        )
    names = pq.read_schema(folder / SCORES).names
    wanted = [
        c
        for c in names
        if c == "customer_id"
        or SCORE_COLUMNS.match(c)
        or c.startswith("model_version_")
        or c == "list_group"
    ]
    scores = pd.read_parquet(folder / SCORES, columns=wanted)
    products = [p.product for p in read_products_metadata(folder / FEATURES)]
    needed = {*feature_names(products), *FRAME_COLUMNS, *segments}
    available = pq.read_schema(folder / FEATURES).names
    columns = [c for c in available if c in needed or c.startswith("holds_")]
    features = pd.read_parquet(folder / FEATURES, columns=columns)
    if len(scores) != len(features):
        raise MonitorError(
            f"{folder}: {SCORES} has {len(scores):,} rows but {FEATURES} {len(features):,}"
        )
    versions = {
        c.removeprefix("model_version_"): str(scores[c].iloc[0])
        for c in scores.columns
        if c.startswith("model_version_") and len(scores)
    }
    extra = [c for c in scores.columns if c not in features.columns]
    if np.array_equal(scores["customer_id"].to_numpy(), features["customer_id"].to_numpy()):
        frame = pd.concat([features, scores[extra]], axis=1)  # the same rows: no join needed
    else:
        frame = features.merge(
            scores[["customer_id", *extra]], on="customer_id", how="left", validate="one_to_one"
        )
    cutoffs = frame["cutoff"].dropna().unique() if "cutoff" in frame else []
    cutoff = str(pd.Timestamp(cutoffs[0]).date()) if len(cutoffs) == 1 else None
    return Side(str(folder), cutoff, frame, versions)


def resolve_scores_dir(value: str | Path, runs_dir: Path) -> Path:
    """A scores directory, or ``<runs_dir>/<date>/scores`` for a month-end date."""
    text = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        folder = Path(runs_dir) / text / "scores"
        if not folder.is_dir():
            raise MonitorError(f"no scored cutoff {text} in {runs_dir} (expected {folder})")
        return folder
    folder = Path(text)
    if not folder.is_dir():
        raise MonitorError(
            f"{text} is neither a scores directory, a month-end date nor an MLflow run id"
        )
    return folder


def read_run_reference(run_id: str, versions: dict[str, str], config: BankConfig) -> Side:
    """The test rows a training run logged, scored by the model versions in ``versions``."""
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise MonitorError(f"no MLflow run {run_id} in the tracking store") from exc
    label = run.data.tags.get("label") or run.data.params.get("label")
    with tempfile.TemporaryDirectory(prefix="retain-reference-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=EVALUATION_ROWS, dst_path=tmp
            )
        except (MlflowException, OSError) as exc:
            raise MonitorError(
                f"MLflow run {run_id} has no {EVALUATION_ROWS}: give the run of a model "
                "trained by retain train"
            ) from exc
        rows = pd.read_parquet(path)
    if not versions:  # the current month names no models: use the run's own
        found = client.search_model_versions(f"run_id='{run_id}'")
        versions = {v.name: str(v.version) for v in found}
    for name, version in versions.items():
        try:
            model = load_verified(name, version=version)
        except RegistryError as exc:
            raise MonitorError(str(exc)) from exc
        score = _score_column(name)
        rows[score] = model.predict(rows)
    if "tier_level" in rows and "tier" not in rows:
        names = np.array(config.tiers.names, dtype=object)
        level = rows["tier_level"].to_numpy(dtype="float64")
        known = np.isfinite(level)
        tier = np.full(len(rows), None, dtype=object)
        tier[known] = names[np.clip(level[known].astype(int), 0, len(names) - 1)]
        rows["tier"] = tier
    cutoffs = rows["cutoff"].dropna().unique() if "cutoff" in rows else []
    cutoff = str(pd.Timestamp(cutoffs[0]).date()) if len(cutoffs) == 1 else None
    return Side(f"run {run_id} ({label})", cutoff, rows, dict(versions), label)


def score_label(score: str) -> str:
    """The label a score column predicts (``p_churn`` → ``label_churn``)."""
    return "label_" + model_of(score)


def _score_column(model: str) -> str:
    if model.startswith("cross_sell_"):
        return "propensity_" + model.removeprefix("cross_sell_")
    return f"p_{model}"


def population(frame: pd.DataFrame, label: str | None, config: BankConfig) -> np.ndarray:
    """Rows of ``frame`` in the population ``label`` is defined for (all rows without one)."""
    if label is None:
        return np.ones(len(frame), dtype=bool)
    if label == LABEL and "eligible_churn" in frame:
        return frame["eligible_churn"].fillna(False).to_numpy(dtype=bool)
    if label == "label_upgrade" and "tier_level" in frame:
        return (frame["tier_level"] < len(config.tiers.bounds)).fillna(False).to_numpy(bool)
    held = "holds_" + label.removeprefix("label_cross_sell_")
    if label.startswith("label_cross_sell_") and held in frame:
        return ~frame[held].fillna(True).to_numpy(dtype=bool)
    return np.ones(len(frame), dtype=bool)
