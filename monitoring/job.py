"""One monitoring run: a scored month against a reference — drift, estimated and realised
performance, the control group — written as ``monitor.json`` and ``monitor.html`` and logged as
an MLflow run (experiment ``monitoring``).

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

import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.atomic import atomic_file, write_json
from features.catalog import feature_names
from features.config import BankConfig
from features.products import read_products_metadata
from models.artifact import load_verified
from models.registry import RegistryError, use_store
from monitoring.control import control_effect
from monitoring.drift import ACT, ALL, OK, WATCH, drift_table, score_histograms
from monitoring.estimate import estimate
from monitoring.realised import (
    LABEL,
    LABELS_FILE,
    churn_labels,
    last_month,
    matured,
    realised,
    with_labels,
)
from monitoring.report import write_monitor_report

EXPERIMENT = "monitoring"
SCORES, FEATURES = "scores.parquet", "features.parquet"
EVALUATION_ROWS = "evaluation/test_rows.parquet"
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
LEVELS = (OK, WATCH, ACT)
TEST_FIGURES = ("test_auc", "ece", "lift_at_10", "value_captured_at_10")
SCORE_COLUMNS = re.compile(r"^(p_|propensity_)")
# what the realised history reads of every scored cutoff
HISTORY_COLUMNS = ["customer_id", "p_churn", "eligible_churn", "contribution_12m", "list_group"]


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


def read_scored(folder: Path) -> Side:
    """A ``retain score`` output directory as one frame (features joined to scores by id)."""
    folder = Path(folder)
    missing = [name for name in (SCORES, FEATURES) if not (folder / name).is_file()]
    if missing:
        raise MonitorError(
            f"{folder} is not a scores directory: {', '.join(missing)} missing "
            "(write one with retain score --out)"
        )
    import pyarrow.parquet as pq

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
    features = pd.read_parquet(folder / FEATURES)
    if len(scores) != len(features):
        raise MonitorError(
            f"{folder}: {SCORES} has {len(scores):,} rows but {FEATURES} {len(features):,}"
        )
    versions = {
        c.removeprefix("model_version_"): str(scores[c].iloc[0])
        for c in scores.columns
        if c.startswith("model_version_") and len(scores)
    }
    extra = [c for c in scores.columns if c not in features.columns or c == "customer_id"]
    frame = features.merge(scores[extra], on="customer_id", how="left", validate="one_to_one")
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


# --- computing ---------------------------------------------------------------------------


def test_figures(model: str, version: str | None) -> dict | None:
    """The test figures logged by the training run of ``model`` ``version``."""
    if version is None:
        return None
    client = MlflowClient()
    try:
        found = client.get_model_version(model, str(version))
        metrics = client.get_run(found.run_id).data.metrics
    except MlflowException:
        return None
    figures = {k: metrics[k] for k in TEST_FIGURES if k in metrics}
    return {"model": model, "version": str(version), "run_id": found.run_id, **figures}


def eligible_estimate(frame: pd.DataFrame) -> dict:
    """CBPE estimate of the churn model on the customers it has labels for."""
    rows = population(frame, LABEL, None)
    value = frame["contribution_12m"].to_numpy(dtype="float64")[rows]
    return estimate(frame["p_churn"].to_numpy(dtype="float64")[rows], value)


def compare(reference: Side, current: Side, config: BankConfig) -> dict:
    """Drift and estimates of ``current`` against ``reference`` (no files, no MLflow): the
    figures the alerts are made of."""
    policy = config.monitoring
    ref = reference.frame
    cur = current.frame[population(current.frame, reference.population, config)]
    products = [c.removeprefix("holds_") for c in cur.columns if c.startswith("holds_")]
    features = [f for f in feature_names(products) if f in ref and f in cur]
    scores = [s for s in score_columns(cur) if s in ref]
    if not features and not scores:
        raise MonitorError("the reference and the current month share no feature and no score")
    segments = list(policy.segments)
    parts = [drift_table(ref, cur, dict.fromkeys(features, "feature"), policy, segments)]
    for score in scores:  # each score on the customers its label is defined for
        label = score_label(score)
        keep = [score, *(s for s in segments if s in ref and s in cur)]
        parts.append(
            drift_table(
                ref.loc[population(ref, label, config), keep],
                cur.loc[population(cur, label, config), keep],
                {score: "score"},
                policy,
                segments,
            )
        )
    drift = pd.concat(parts, ignore_index=True)
    result = {
        "reference": {"source": reference.label, "cutoff": reference.cutoff, "rows": len(ref)},
        "current": {"source": current.label, "cutoff": current.cutoff, "rows": len(cur)},
        "features": len(features),
        "scores": scores,
        "segments": [s for s in policy.segments if s in ref and s in cur],
        "drift": drift,
        "score_distributions": {
            s: score_histograms(
                ref.loc[population(ref, score_label(s), config), s],
                cur.loc[population(cur, score_label(s), config), s],
            )
            for s in scores
        },
    }
    if "p_churn" in cur:
        result["estimate"] = eligible_estimate(cur)
        result["estimate"]["reference_mean_p"] = float(
            ref.loc[population(ref, LABEL, config), "p_churn"].mean()
        )
        if LABEL in ref and ref[LABEL].notna().any():
            result["estimate"]["reference_observed_churn_rate"] = float(ref[LABEL].mean())
    return result


def alerts_of(result: dict, config: BankConfig) -> list[dict]:
    """Every watch- or act-level finding, most severe first."""
    policy = config.monitoring
    found = []
    drift = result["drift"]
    for row in drift[drift["band"].isin([WATCH, ACT])].itertuples():
        found.append(
            {
                "what": f"{row.kind} {row.what}",
                "segment": row.segment,
                "psi": round(row.psi, 4),
                "band": row.band,
                "floor": round(row.floor, 4),
            }
        )
    test = result.get("test_figures") or {}
    est = result.get("estimate") or {}
    if "test_auc" in test and est.get("estimated_auc") is not None:
        drop = test["test_auc"] - est["estimated_auc"]
        # beyond chance: the test AUC lies above where the realised AUC would plausibly fall
        if test["test_auc"] > est.get("estimated_auc_high", math.inf):
            level = _auc_band(drop, policy)
            if level != OK:
                found.append(
                    {
                        "what": "estimated AUC below the test AUC",
                        "segment": ALL,
                        "psi": None,
                        "band": level,
                        "value": round(est["estimated_auc"], 4),
                        "reference": round(test["test_auc"], 4),
                    }
                )
    for entry in result.get("history", []):
        real, figures = entry.get("realised") or {}, entry.get("test_figures") or {}
        if "auc" in real and "test_auc" in figures:
            drop = figures["test_auc"] - real["auc"]
            level = _auc_band(drop, policy) if drop > 1.96 * real["auc_se"] else OK
            if level != OK:
                found.append(
                    {
                        "what": f"realised AUC {entry['cutoff']} below the test AUC",
                        "segment": ALL,
                        "psi": None,
                        "band": level,
                        "value": round(real["auc"], 4),
                        "reference": round(figures["test_auc"], 4),
                    }
                )
        low, high = entry.get("estimated_auc_low"), entry.get("estimated_auc_high")
        gap = abs(real["auc"] - entry["estimated_auc"]) if "auc" in real and low else 0.0
        # calibration no longer holds: outside the sampling interval and by a material margin
        if gap >= policy.auc_drop_watch and not low <= real["auc"] <= high:
            found.append(
                {
                    "what": f"realised AUC {entry['cutoff']} outside the estimate's interval "
                    "(calibration no longer holds)",
                    "segment": ALL,
                    "psi": None,
                    "band": WATCH,
                    "value": round(real["auc"], 4),
                    "reference": f"{low:.4f}–{high:.4f}",
                }
            )
        control = entry.get("control") or {}
        if control.get("customers_saved_high") is not None and control["customers_saved_high"] < 0:
            found.append(
                {
                    "what": f"listed customers churned more than control ({entry['cutoff']})",
                    "segment": ALL,
                    "psi": None,
                    "band": WATCH,
                    "value": round(control["difference"], 4),
                }
            )
    return sorted(found, key=lambda a: (-LEVELS.index(a["band"]), -(a["psi"] or 0)))


def _auc_band(drop: float, policy) -> str:
    if drop >= policy.auc_drop_act:
        return ACT
    return WATCH if drop >= policy.auc_drop_watch else OK


def level_of(alerts: list[dict]) -> str:
    return max((a["band"] for a in alerts), key=LEVELS.index, default=OK)


def history(
    runs_dir: Path,
    current: Side,
    current_dir: Path,
    warehouse: str | Path | None,
    config: BankConfig,
    step: Callable[[str], None],
) -> tuple[list[dict], str | None]:
    """Estimated, and where labels matured realised, figures of every scored cutoff in
    ``runs_dir`` and of the current one; a note when realised figures cannot be had."""
    folders: dict[str, Path] = {}
    if Path(runs_dir).is_dir():
        for folder in sorted(Path(runs_dir).glob("*/scores")):
            if _is_date(folder.parent.name) and (folder / SCORES).is_file():
                folders[folder.parent.name] = folder
    if current.cutoff:
        folders.setdefault(current.cutoff, current_dir)
    last, note = None, None
    if warehouse is None:
        note = "no warehouse given: realised figures need its later months"
    else:
        last = last_month(warehouse)
    entries = []
    for cutoff, folder in sorted(folders.items()):
        scored = pd.read_parquet(folder / SCORES, columns=_present(folder / SCORES))
        version = scored["model_version_churn"].iloc[0] if "model_version_churn" in scored else None
        entry = {"cutoff": cutoff, "source": str(folder)}
        est = eligible_estimate(scored) if "eligible_churn" in scored else {}
        entry.update({k: est.get(k) for k in ("estimated_auc", "estimated_auc_low")})
        entry.update({k: est.get(k) for k in ("estimated_auc_high", "estimated_churn_rate")})
        entry["test_figures"] = test_figures("churn", version)
        day = date.fromisoformat(cutoff)
        if last is not None and matured(day, last, config):
            step(f"labels of {cutoff}")
            cache = folder.parent / LABELS_FILE if folder.parent.parent == Path(runs_dir) else None
            labelled = with_labels(scored, churn_labels(warehouse, day, config, cache))
            known = labelled[LABEL].notna().to_numpy()
            entry["realised"] = realised(
                labelled[LABEL].to_numpy()[known].astype(int),
                labelled["p_churn"].to_numpy(dtype="float64")[known],
                labelled["contribution_12m"].to_numpy(dtype="float64")[known],
            )
            entry["control"] = control_effect(labelled)
        else:
            entry["matured"] = False
            entry["control"] = control_effect(scored)
        entries.append(entry)
    return entries, note


def _present(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    return [c for c in names if c in HISTORY_COLUMNS or c == "model_version_churn"]


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# --- the run -----------------------------------------------------------------------------


def run_monitor(
    *,
    current: Path,
    reference: str | Path,
    runs_dir: Path,
    warehouse: str | Path | None,
    config: BankConfig,
    out: Path,
    log_mlflow: bool = True,
    step: Callable[[str], None] = lambda _: None,
) -> dict:
    """Monitor the scores in ``current`` against ``reference``; write ``out/monitor.json`` and
    ``out/monitor.html``; log an MLflow run; return the summary (``alert``: ok / watch / act,
    and the alerts)."""
    use_store(experiment=EXPERIMENT)
    step("reading the current month")
    current_dir = Path(current)
    current_side = read_scored(current_dir)
    step("reading the reference")
    if RUN_ID.fullmatch(str(reference)):
        reference_side = read_run_reference(str(reference), current_side.versions, config)
    else:
        reference_side = read_scored(resolve_scores_dir(reference, runs_dir))
    config = config.with_products(read_products_metadata(current_dir / FEATURES))
    if not log_mlflow:
        return _monitor(
            reference_side, current_side, current_dir, runs_dir, warehouse, config, out, step
        )
    name = f"monitor {current_side.cutoff or current_dir}"
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags({"reference": str(reference), "current": str(current)})
        summary = _monitor(
            reference_side, current_side, current_dir, runs_dir, warehouse, config, out, step
        )
        mlflow.log_metrics(_metrics(summary))
        mlflow.set_tag("alert", summary["alert"])
        mlflow.log_artifact(str(Path(out) / "monitor.json"))
        mlflow.log_artifact(str(Path(out) / "monitor.html"))
        summary["run_id"] = run.info.run_id
    return summary


def _monitor(reference, current, current_dir, runs_dir, warehouse, config, out, step) -> dict:
    step("drift")
    result = compare(reference, current, config)
    result["test_figures"] = test_figures("churn", current.versions.get("churn"))
    step("realised performance")
    result["history"], result["history_note"] = history(
        runs_dir, current, current_dir, warehouse, config, step
    )
    alerts = alerts_of(result, config)
    result["alerts"] = alerts
    result["alert"] = level_of(alerts)
    result["policy"] = config.monitoring.model_dump(mode="json")
    drift = result.pop("drift")
    payload = clean({**result, "drift": drift.to_dict(orient="records")})
    step("writing the report")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "monitor.json", payload)
    with atomic_file(out / "monitor.html") as staging:
        write_monitor_report(staging, payload, config)
    overall = drift[drift["segment"] == ALL].sort_values("psi", ascending=False)
    return clean(
        {
            "alert": result["alert"],
            "alerts": alerts,
            "reference": result["reference"],
            "current": result["current"],
            "drift_top": overall.head(10).to_dict(orient="records"),
            "psi_max_feature": _max_psi(overall, "feature"),
            "psi_max_score": _max_psi(overall, "score"),
            "estimate": result.get("estimate"),
            "test_figures": result["test_figures"],
            "history": result["history"],
            "history_note": result["history_note"],
            "too_small": int((drift["band"] == "too small").sum()),
            "out": str(out),
        }
    )


def _max_psi(overall: pd.DataFrame, kind: str) -> float | None:
    part = overall[overall["kind"] == kind]
    return float(part["psi"].max()) if len(part) else None


def _metrics(summary: dict) -> dict[str, float]:
    metrics = {
        "alerts": len(summary["alerts"]),
        "act_alerts": sum(a["band"] == ACT for a in summary["alerts"]),
        "watch_alerts": sum(a["band"] == WATCH for a in summary["alerts"]),
    }
    for key in ("psi_max_feature", "psi_max_score"):
        if summary.get(key) is not None:
            metrics[key] = summary[key]
    for row in summary["drift_top"]:
        if row["kind"] == "score":
            metrics[f"psi_{row['what']}"] = row["psi"]
    for key, value in (summary.get("estimate") or {}).items():
        if isinstance(value, float):
            metrics[key] = value
    for entry in summary["history"]:
        suffix = entry["cutoff"].replace("-", "_")
        for key in ("auc", "ece", "lift_at_10", "value_captured_at_10"):
            value = (entry.get("realised") or {}).get(key)
            if value is not None:
                metrics[f"realised_{key}_{suffix}"] = value
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


def clean(value):
    """Plain JSON: NaN and infinities become null, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
