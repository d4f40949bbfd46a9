"""Monitoring fixtures: the demo's champion models loaded once, and scores written the way
`retain score` writes them (features.parquet + scores.parquet), without its lists and report."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.config import BankConfig
from features.targets import CHURN, version_column
from serving.champions import ModelSet, load_champions
from serving.score import score_frame


@dataclass(frozen=True)
class Champions:
    models: ModelSet
    test_figures: dict  # what the churn champion's training run logged


@contextmanager
def demo_store(champions) -> Iterator[None]:
    """MLflow pointed at the demo's store in this process; the tracking URI is restored."""
    _, _, env = champions
    uri, before = env["MLFLOW_TRACKING_URI"], os.environ.get("MLFLOW_TRACKING_URI")
    previous = mlflow.get_tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
        mlflow.set_tracking_uri(previous)
        mlflow.set_registry_uri(previous)


@pytest.fixture(scope="session")
def demo_models(champions) -> Champions:
    """The demo store's champions, loaded in this process."""
    from monitoring.job import test_figures

    with demo_store(champions):
        models = load_champions()
        figures = test_figures(CHURN.model, models.churn.version)
    return Champions(models, figures)


def scored_frame(features: pd.DataFrame, models: ModelSet) -> pd.DataFrame:
    """Features with every model's score beside them (what monitoring reads of a month)."""
    features = features.reset_index(drop=True)
    scores = score_frame(models, features, BankConfig().lists.risk_bands)
    return pd.concat([features, scores.drop(columns=["customer_id"])], axis=1)


def write_scores_dir(
    folder: Path, features: pd.DataFrame, models: ModelSet, source: Path | None = None
) -> Path:
    """A scores directory as `retain score` leaves it, as far as monitoring reads it; the
    feature file keeps the catalogue of ``source`` (a feature file) in its metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    features = features.reset_index(drop=True)
    table = pa.Table.from_pandas(features, preserve_index=False)
    if source is not None:
        extra = {k: v for k, v in (pq.read_schema(source).metadata or {}).items() if k != b"pandas"}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    pq.write_table(table, folder / "features.parquet")
    scores = score_frame(models, features, BankConfig().lists.risk_bands)
    keep = ["eligible_churn", "contribution_12m", "tier", "branch_id"]
    scores = pd.concat([scores, features[keep]], axis=1)
    for name, version in models.versions.items():
        scores[version_column(name)] = version
    scores.to_parquet(folder / "scores.parquet", index=False)
    return folder
