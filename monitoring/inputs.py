"""What monitoring reads: a scored month, or a model's test rows, as one frame per side.

The reference is one of:

- a scores directory (``retain score --out``: ``scores.parquet`` + ``features.parquet``);
- a month-end date, read as ``<runs_dir>/<date>/scores``;
- the MLflow run id (32 hex digits) of a model's training run: its logged test rows
  (``evaluation/test_rows.parquet``: ids, cutoff, label, every catalog feature, no scores) are
  the reference of the features. Those rows are the customers the run's label is defined for
  (churn: eligible customers), so the current month's features are cut to the same population.
  Each score is judged on its own model's rows: the test rows the training run of that model
  version logged (a cross-sell score on the customers who did not hold the product, never on
  churn's rows), scored with the version that scored the current month, so score drift
  measures the data, not a change of model or of population. Test rows carry no branch, so
  there is no branch segment.

Every target name (score, label, model, ``holds_`` column) and who each target is for come from
``features.targets``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.config import BankConfig
from features.targets import (
    CHURN,
    ELIGIBLE_CHURN,
    HOLDS_PREFIX,
    MODEL_VERSION_PREFIX,
    TIER_LEVEL,
    Target,
    from_label,
    from_model,
    from_score,
    model_versions,
)
from features.targets import score_columns as score_names
from models.artifact import load_verified
from models.registry import EVALUATION_ROWS, RegistryError
from models.registry import EXPERIMENT as TRAINING_EXPERIMENT

SCORES, FEATURES = "scores.parquet", "features.parquet"
RUN_ID = re.compile(r"[0-9a-f]{32}")
SHORT_RUN_ID = re.compile(r"[0-9a-f]{8,31}")  # a run id as `retain runs` shortens it
# what drift, estimates and populations read of a month besides the catalogue's features
FRAME_COLUMNS = (
    "customer_id",
    "cutoff",
    ELIGIBLE_CHURN,
    "tier",
    TIER_LEVEL,
    "contribution_12m",
    CHURN.label,
)


class MonitorError(ValueError):
    """Inputs monitoring cannot use, named in one line."""


@dataclass
class Side:
    """One side of the comparison: rows with features and scores, where they came from.

    A scored month keeps in ``frame`` what defines populations and segments, and the scores;
    its catalogue features stay in ``features_file`` (rows in ``frame``'s order) and are read
    a few columns at a time (:meth:`columns`), so 10M customers × every feature are never in
    memory at once."""

    label: str
    cutoff: str | None
    frame: pd.DataFrame
    versions: dict[str, str] = field(default_factory=dict)
    population: Target | None = None  # the target whose population the rows are (run references)
    # a run reference's rows of each score: its own model's test rows, scored (score → rows)
    score_rows: dict[str, pd.DataFrame] = field(default_factory=dict)
    features_file: Path | None = None
    file_columns: tuple[str, ...] = ()  # what ``features_file`` holds

    def has(self, name: str) -> bool:
        return name in self.frame or name in self.file_columns

    def columns(self, names: list[str], rows: np.ndarray | None = None) -> pd.DataFrame:
        """``names`` of every row of ``frame`` (``rows``: of those rows only), read from the
        features file when ``frame`` does not hold them."""
        held = [n for n in names if n in self.frame]
        read = [n for n in names if n not in self.frame]
        out = self.frame[held]
        if read:
            extra = pd.read_parquet(self.features_file, columns=read)
            out = pd.concat([out, extra.set_axis(out.index)], axis=1)[list(names)]
        return out if rows is None else out[rows]


# --- reading -----------------------------------------------------------------------------


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The model scores of ``frame`` (``p_churn``, ``p_upgrade``, ``propensity_<product>``)."""
    return [c for c in score_names(frame.columns) if frame[c].dtype.kind == "f"]


def read_scored(folder: Path, segments: tuple[str, ...] = ()) -> Side:
    """A ``retain score`` output directory as one side: in the frame the columns that define
    who a model is for, ``segments`` and every score (joined by customer id); the catalogue's
    features read from ``features.parquet`` when compared (:meth:`Side.columns`)."""
    folder = Path(folder)
    missing = [name for name in (SCORES, FEATURES) if not (folder / name).is_file()]
    if missing:
        raise MonitorError(
            f"{folder} is not a scores directory: {', '.join(missing)} missing "
            "(write one with retain score --out)"
        )
    names = pq.read_schema(folder / SCORES).names
    stamped = [c for c in names if c.startswith(MODEL_VERSION_PREFIX)]
    wanted = [c for c in names if c in ("customer_id", "list_group") or from_score(c) is not None]
    scores = pd.read_parquet(folder / SCORES, columns=wanted)
    available = pq.read_schema(folder / FEATURES).names
    kept = {*FRAME_COLUMNS, *segments} - {"cutoff"}
    columns = [c for c in available if c in kept or c.startswith(HOLDS_PREFIX)]
    features = pd.read_parquet(folder / FEATURES, columns=columns)
    if len(scores) != len(features):
        raise MonitorError(
            f"{folder}: {SCORES} has {len(scores):,} rows but {FEATURES} {len(features):,}"
        )
    first = first_row(folder / SCORES, stamped)
    versions = model_versions(stamped, first.__getitem__) if first else {}
    extra = [c for c in scores.columns if c not in features.columns]
    if np.array_equal(scores["customer_id"].to_numpy(), features["customer_id"].to_numpy()):
        frame = pd.concat([features, scores[extra]], axis=1)  # the same rows: no join needed
    else:
        frame = features.merge(
            scores[["customer_id", *extra]], on="customer_id", how="left", validate="one_to_one"
        )
    cutoffs = []
    if "cutoff" in available:  # read as Arrow: 10M dates are not made Python objects
        column = pq.read_table(folder / FEATURES, columns=["cutoff"]).column("cutoff")
        cutoffs = column.drop_null().unique().to_pylist()
    cutoff = str(pd.Timestamp(cutoffs[0]).date()) if len(cutoffs) == 1 else None
    file_columns = tuple(c for c in available if c not in frame)
    return Side(str(folder), cutoff, frame, versions, None, {}, folder / FEATURES, file_columns)


def first_row(path: Path, columns: list[str]) -> dict:
    """``columns`` of a parquet file's first row (empty for a file without rows)."""
    if not columns:
        return {}
    batches = pq.ParquetFile(path).iter_batches(batch_size=1, columns=columns)
    first = next(iter(batches), None)
    return first.to_pylist()[0] if first is not None and first.num_rows else {}


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


def training_run_id(text: str) -> str | None:
    """The MLflow run id ``text`` names: 32 hex digits, or a prefix of at least 8 (what
    ``retain runs`` shows) that exactly one run of the training experiment starts with; None
    when ``text`` is no run id (a date, a folder)."""
    if RUN_ID.fullmatch(text):
        return text
    if not SHORT_RUN_ID.fullmatch(text) or Path(text).exists():
        return None
    client = MlflowClient()
    experiment = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    found, token = [], None
    while experiment is not None:
        page = client.search_runs([experiment.experiment_id], max_results=1_000, page_token=token)
        found += [r.info.run_id for r in page if r.info.run_id.startswith(text)]
        token = page.token
        if not token:
            break
    if len(found) != 1:
        which = "no run" if not found else f"{len(found)} runs"
        raise MonitorError(
            f"{which} of the experiment {TRAINING_EXPERIMENT!r} start with {text}: give the "
            "whole run id (retain runs --json - lists them)"
        )
    return found[0]


def read_run_reference(run_id: str, versions: dict[str, str], config: BankConfig) -> Side:
    """The test rows a training run logged (the features' reference) and, for every model
    version in ``versions`` (else the run's own), that version's own test rows scored by it
    (the reference of its score)."""
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise MonitorError(f"no MLflow run {run_id} in the tracking store") from exc
    label = run.data.tags.get("label") or run.data.params.get("label")
    target = from_label(label) if label else None
    rows = with_tier(logged_test_rows(run_id), config)
    if not versions:  # the current month names no models: use the run's own
        found = client.search_model_versions(f"run_id='{run_id}'")
        versions = {v.name: str(v.version) for v in found}
    scored = {}
    for name, version in versions.items():
        model_target = from_model(name)
        if model_target is None:  # not a model retain makes: no score column of the month
            continue
        scored[model_target.score] = own_scored_rows(name, version, (run_id, rows), config)
    cutoffs = rows["cutoff"].dropna().unique() if "cutoff" in rows else []
    cutoff = str(pd.Timestamp(cutoffs[0]).date()) if len(cutoffs) == 1 else None
    return Side(f"run {run_id} ({label})", cutoff, rows, dict(versions), target, scored)


def logged_test_rows(run_id: str, model: str | None = None) -> pd.DataFrame:
    """The test rows (``evaluation/test_rows.parquet``) training run ``run_id`` logged;
    ``model`` names the model whose run it is, for the error."""
    with tempfile.TemporaryDirectory(prefix="retain-reference-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=EVALUATION_ROWS, dst_path=tmp
            )
        except (MlflowException, OSError) as exc:
            what = f"{model}'s training run {run_id}" if model else f"MLflow run {run_id}"
            raise MonitorError(
                f"{what} has no {EVALUATION_ROWS}: give the run of a model trained by retain "
                "train, or an earlier scored month as the reference"
            ) from exc
        return pd.read_parquet(path)


def own_scored_rows(
    name: str, version: str, named: tuple[str, pd.DataFrame], config: BankConfig
) -> pd.DataFrame:
    """The ids, cutoff, segment columns and score of model ``name`` ``version`` on the test
    rows its own training run logged; ``named`` is (run id, test rows) already read."""
    try:
        model = load_verified(name, version=version)
    except RegistryError as exc:
        raise MonitorError(str(exc)) from exc
    run_id = MlflowClient().get_model_version(name, version).run_id
    named_run, named_rows = named
    if run_id == named_run:
        rows = named_rows
    else:
        rows = with_tier(logged_test_rows(run_id, f"{name} v{version}"), config)
    keep = [c for c in ("customer_id", "cutoff", *config.monitoring.segments) if c in rows]
    own = rows[keep].copy()
    own[from_model(name).score] = model.predict(rows)
    return own


def with_tier(rows: pd.DataFrame, config: BankConfig) -> pd.DataFrame:
    """``rows`` with a ``tier`` column named from ``tier_level`` (test rows carry the level
    only; tier is a monitoring segment)."""
    if TIER_LEVEL not in rows or "tier" in rows:
        return rows
    names = np.array(config.tiers.names, dtype=object)
    level = rows[TIER_LEVEL].to_numpy(dtype="float64")
    known = np.isfinite(level)
    tier = np.full(len(rows), None, dtype=object)
    tier[known] = names[np.clip(level[known].astype(int), 0, len(names) - 1)]
    return rows.assign(tier=tier)


def population(frame: pd.DataFrame, target: Target | None, config: BankConfig) -> np.ndarray:
    """Rows of ``frame`` in the population ``target`` is defined for: all rows without a target
    or when ``frame`` lacks the columns that define it (a run's logged test rows carry no
    ``eligible_churn`` or ``holds_`` column: they are already one model's population)."""
    if target is None or not _defines(frame.columns, target, config):
        return np.ones(len(frame), dtype=bool)
    return target.population_mask(frame, len(config.tiers.names))


def _defines(columns: Iterable[str], target: Target, config: BankConfig) -> bool:
    """Whether ``columns`` hold every column ``target``'s population rule reads (the rule is
    asked which, so it is not written a second time here)."""
    read: list[str] = []

    def column(name: str) -> np.ndarray:
        read.append(name)
        return np.zeros(1, dtype=bool)

    target.population(column, len(config.tiers.names))
    return set(read) <= set(columns)
