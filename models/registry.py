"""The MLflow store: where runs are tracked, which model version holds which alias, who moved
``champion`` and when, and what the runs of an experiment measured.

The store is SQLite under ``mlruns/`` with artifacts in ``mlruns/artifacts`` unless
``MLFLOW_TRACKING_URI`` says otherwise. A tracking server (``http://…``, ``https://…``) keeps
the artifacts where it was told (``mlflow server --artifacts-destination`` with
``--serve-artifacts``: clients upload and download through the server); retain then never names a
local artifact folder.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
from mlflow.tracking import MlflowClient

EXPERIMENT = "retain"
CHALLENGER, CHAMPION = "challenger", "champion"
SHA_TAG = "booster_sha256"
# tracking URIs that name a server: the server, not this process, places the artifacts
SERVER_SCHEMES = ("http", "https", "databricks")
# the test rows logged with every trained model's run: promotion compares champion and
# challenger on them, monitoring reads them back as the reference
EVALUATION_ROWS = "evaluation/test_rows.parquet"
# what `retain runs` shows, in this order; cutoffs only when a run logged them as params
RUN_METRICS = ("test_auc", "auc_to_oracle", "ece", "lift_at_10")
PARENT_TAG = "mlflow.parentRunId"  # MLflow's tag on a nested run
MAX_NESTED = 1_000  # nested runs read per parent (one per model)
CUTOFF_PARAMS = {
    "train": ("train_cutoffs", "train_cutoff"),
    "valid": ("valid_cutoffs", "valid_cutoff", "validation_cutoffs"),
    "test": ("test_cutoffs", "test_cutoff"),
}


class RegistryError(Exception):
    """A model that is missing, of the wrong flavour or does not match its recorded hash."""


def tracking_uri(root: Path = Path("mlruns")) -> str:
    return (
        os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"
    )


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (it decides where artifacts go), not a database
    or folder this process writes to itself."""
    scheme = urlsplit(uri).scheme or uri  # "databricks" alone names the workspace's server
    return scheme.lower() in SERVER_SCHEMES


def artifact_location(uri: str, root: Path = Path("mlruns")) -> str | None:
    """Where a new experiment keeps its artifacts: ``artifacts/`` next to a SQLite store (or in
    ``root`` for another database this process writes to); None for a tracking server, whose
    default artifact root (e.g. ``mlflow-artifacts:/``) every client can reach — a local path
    there would leave each model on the machine that trained it."""
    if is_server(uri):
        return None
    if uri.startswith("sqlite:///"):
        root = Path(uri.removeprefix("sqlite:///")).parent
    return (Path(root).resolve() / "artifacts").as_uri()


def use_store(root: Path = Path("mlruns"), experiment: str = EXPERIMENT) -> MlflowClient:
    """Point MLflow at the project store and make ``experiment`` exist and be the active one
    (artifacts as :func:`artifact_location` says)."""
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)  # the first word with the store
    except Exception as exc:  # a server that does not answer, a database that cannot be opened
        line = next((t.strip() for t in str(exc).splitlines() if t.strip()), type(exc).__name__)
        raise RegistryError(f"could not reach the model registry at {uri}: {line}") from exc
    if found is None:
        try:
            mlflow.create_experiment(experiment, artifact_location=artifact_location(uri, root))
        except mlflow.exceptions.MlflowException:
            # another process (a second service worker, a colleague) made it meanwhile
            if mlflow.get_experiment_by_name(experiment) is None:
                raise
    mlflow.set_experiment(experiment)
    return MlflowClient()


def find_version(name: str, alias: str | None = None, version: str | None = None):
    """The registered ``name`` at ``version`` (or ``@alias``); :class:`RegistryError` naming
    what was asked and the store when there is none."""
    client = MlflowClient()
    try:
        if version is not None:
            return client.get_model_version(name, str(version))
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as exc:
        which = f"version {version}" if version is not None else f"@{alias}"
        raise RegistryError(f"no model {name} {which} in the registry ({tracking_uri()})") from exc


def who() -> str:
    """Who is acting: ``RETAIN_USER`` if set, else the login name."""
    try:
        return os.environ.get("RETAIN_USER") or getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


def set_champion(name: str, version: str, reason: str = "") -> dict:
    """Move the ``champion`` alias of ``name`` to ``version`` and record the change: on the
    version (``champion_by``, ``champion_at``, ``champion_reason``) and on the registered model
    (``last_champion_change``, JSON with the previous version)."""
    client = MlflowClient()
    try:
        previous = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        previous = None
    change = {
        "version": str(version),
        "previous": previous,
        "by": who(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
    }
    client.set_registered_model_alias(name, CHAMPION, str(version))
    for key in ("by", "at", "reason"):
        client.set_model_version_tag(name, str(version), f"champion_{key}", change[key])
    client.set_registered_model_tag(name, "last_champion_change", json.dumps(change))
    return change


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
            rows.append(
                {
                    "name": model.name,
                    "version": str(version.version),
                    "aliases": sorted(by_version.get(str(version.version), [])),
                    "test_auc": metrics.get("test_auc"),
                    "ece": metrics.get("ece"),
                    "auc_to_oracle": metrics.get("auc_to_oracle"),
                    "champion_by": version.tags.get("champion_by"),
                    "champion_at": version.tags.get("champion_at"),
                }
            )
    return sorted(rows, key=lambda r: (r["name"], -int(r["version"])))


def list_runs(experiment: str = EXPERIMENT, model: str | None = None, last: int = 20) -> list[dict]:
    """The newest ``last`` top-level runs of ``experiment``, newest first, with their key
    metrics and the cutoffs they logged. A parent run (``retain train``, named by
    ``--run-name``) is followed by its nested runs, one per model (``parent_run_id`` set), and
    shows their figures when it has none of its own: its one nested run's, or the mean over
    several (``metrics_from``). With ``model``, only that model's runs, newest first."""
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        known = sorted(e.name for e in client.search_experiments())
        raise RegistryError(f"no experiment {experiment!r} in {tracking_uri()}; there are {known}")

    def search(where: str, count: int, order: str = "DESC") -> list:
        return client.search_runs(
            [found.experiment_id],
            filter_string=where,
            order_by=[f"attributes.start_time {order}"],
            max_results=count,
        )

    if model:
        return [run_row(run) for run in search(f"tags.model = '{model}'", last)]
    rows = []
    for run in search(f"tags.{PARENT_TAG} IS NULL", last):
        nested = [
            run_row(child)
            for child in search(f"tags.{PARENT_TAG} = '{run.info.run_id}'", MAX_NESTED, "ASC")
        ]
        rows += [with_nested_figures(run_row(run), nested), *nested]
    return rows


def run_row(run) -> dict:
    """One run as ``retain runs`` lists it (full ids and cutoffs: the CLI shortens them)."""
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    row = {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "parent_run_id": tags.get(PARENT_TAG),
        "start": datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(
            timespec="seconds"
        ),
        "status": run.info.status,
        "model": tags.get("model") or tags.get("task"),
        **{k: metrics.get(k) for k in RUN_METRICS},
        "metrics_from": "run" if any(k in metrics for k in RUN_METRICS) else None,
    }
    for part, keys in CUTOFF_PARAMS.items():
        row[f"{part}_cutoffs"] = next((params[k] for k in keys if k in params), None)
    return row


def with_nested_figures(row: dict, nested: list[dict]) -> dict:
    """A parent run's row with its nested runs' figures when it logged none of its own: the
    one nested run's metrics and cutoffs, or the mean of each metric over several (and the
    cutoffs they share)."""
    row = {**row, "nested_runs": len(nested)}
    if row["metrics_from"] or not nested:
        return row
    for key in RUN_METRICS:
        values = [r[key] for r in nested if r[key] is not None]
        row[key] = sum(values) / len(values) if values else None
    for part in CUTOFF_PARAMS:
        shared = {r[f"{part}_cutoffs"] for r in nested}
        row[f"{part}_cutoffs"] = shared.pop() if len(shared) == 1 else None
    if len(nested) == 1:
        row["model"] = nested[0]["model"]
        row["metrics_from"] = "nested run"
    else:
        row["metrics_from"] = f"mean of {len(nested)} nested runs"
    return row


def champion_versions() -> dict[str, str]:
    """``{model: version}`` of every registered model's champion (no download)."""
    client = MlflowClient()
    versions = {}
    for model in client.search_registered_models():
        try:
            versions[model.name] = client.get_model_version_by_alias(model.name, CHAMPION).version
        except mlflow.exceptions.MlflowException:  # registered, never promoted
            continue
    return versions
