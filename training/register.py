"""MLflow: where runs are tracked, how a booster is logged, registered, verified and promoted.

The store is SQLite under ``mlruns/`` with artifacts in ``mlruns/artifacts`` unless
``MLFLOW_TRACKING_URI`` says otherwise. Boosters travel in LightGBM's native text format
(``model.lgb``) with their SHA-256 as a tag on the run and on the model version; calibration,
feature list and hash ride along in the model's metadata as plain JSON. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

EXPERIMENT = "retain"
CHALLENGER, CHAMPION = "challenger", "champion"
BOOSTER_FILE = "model.lgb"
SHA_TAG = "booster_sha256"


class RegistryError(Exception):
    """A model that is missing, of the wrong flavour or does not match its recorded hash."""


def tracking_uri(root: Path = Path("mlruns")) -> str:
    return (
        os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"
    )


def use_store(root: Path = Path("mlruns")) -> MlflowClient:
    """Point MLflow at the project store and make sure the experiment exists; artifacts go to
    ``artifacts/`` next to a SQLite store."""
    uri = tracking_uri(root)
    if uri.startswith("sqlite:///"):
        root = Path(uri.removeprefix("sqlite:///")).parent
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = (Path(root).resolve() / "artifacts").as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(EXPERIMENT)
    return MlflowClient()


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class LoggedModel:
    name: str
    version: str
    sha256: str
    model_uri: str


def log_booster(
    booster: lgb.Booster, name: str, example: pd.DataFrame, metadata: dict
) -> LoggedModel:
    """Log the booster (native format) in the active run, register it as ``name``, tag its
    SHA-256 and give the new version the ``challenger`` alias."""
    info = mlflow.lightgbm.log_model(
        booster,
        name="model",
        input_example=example,
        registered_model_name=name,
        metadata=metadata,
        # stated, not inferred: inference imports the model in a subprocess (~10 s a model)
        pip_requirements=[f"lightgbm=={lgb.__version__}"],
    )
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    sha = sha256_file(local / BOOSTER_FILE)
    client = MlflowClient()
    version = str(info.registered_model_version)
    mlflow.set_tag(SHA_TAG, sha)
    client.set_model_version_tag(name, version, SHA_TAG, sha)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return LoggedModel(name=name, version=version, sha256=sha, model_uri=info.model_uri)


@dataclass(frozen=True)
class VerifiedModel:
    """A booster loaded from the registry after its hash was checked, with its metadata."""

    name: str
    version: str
    booster: lgb.Booster
    metadata: dict


def load_verified(name: str, alias: str) -> VerifiedModel:
    """Resolve ``models:/name@alias``, accept only the lightgbm flavour, check the booster's
    SHA-256 against the training tag before loading it."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as exc:
        raise RegistryError(f"no model {name}@{alias} in the registry ({tracking_uri()})") from exc
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version.version}"))
    model = mlflow.models.Model.load(local / "MLmodel")
    if set(model.flavors) - {"python_function"} != {"lightgbm"}:
        raise RegistryError(f"{name}@{alias} is not a LightGBM model: {sorted(model.flavors)}")
    expected = version.tags.get(SHA_TAG)
    booster_file = local / BOOSTER_FILE
    if not booster_file.is_file():
        raise RegistryError(f"{name}@{alias} has no {BOOSTER_FILE} (only native boosters load)")
    actual = sha256_file(booster_file)
    if expected is None or actual != expected:
        raise RegistryError(
            f"{name}@{alias} (version {version.version}): booster SHA-256 {actual[:12]}… does not "
            f"match the training tag {str(expected)[:12]}… — refusing to load it"
        )
    booster = lgb.Booster(model_file=str(booster_file))
    return VerifiedModel(name, str(version.version), booster, model.metadata or {})


def set_champion(name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)


def registered_models() -> list[dict]:
    """Every registered model with its versions' aliases and key metrics."""
    client = MlflowClient()
    rows = []
    for model in client.search_registered_models():
        aliases = model.aliases or {}
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        for version in client.search_model_versions(f"name='{model.name}'"):
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append({
                "name": model.name,
                "version": str(version.version),
                "aliases": sorted(by_version.get(str(version.version), [])),
                "test_auc": metrics.get("test_auc"),
                "ece": metrics.get("ece"),
                "auc_to_oracle": metrics.get("auc_to_oracle"),
            })  # fmt: skip
    return sorted(rows, key=lambda r: (r["name"], -int(r["version"])))
