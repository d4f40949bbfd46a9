"""One monitoring run: a scored month against a reference (see ``monitoring.inputs`` for
what a reference can be) — drift, estimated and realised performance, the control group —
with its alerts, written as ``monitor.json`` and ``monitor.html`` and logged as an MLflow run
(experiment ``monitoring``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.atomic import atomic_file, write_json
from features.catalog import feature_names
from features.config import BankConfig
from features.products import read_products_metadata
from features.targets import CHURN, ELIGIBLE_CHURN, from_score, held_products, version_column
from models.registry import use_store
from monitoring.control import control_effect
from monitoring.drift import (
    ACT,
    ALL,
    OK,
    WATCH,
    drift_table,
    score_histograms,
    segment_codes,
)
from monitoring.estimate import estimate
from monitoring.inputs import (
    FEATURES,
    SCORES,
    MonitorError,
    Side,
    first_row,
    population,
    read_run_reference,
    read_scored,
    resolve_scores_dir,
    score_columns,
    training_run_id,
)
from monitoring.realised import (
    LABELS_FILE,
    churn_labels,
    last_month,
    matured,
    realised,
    with_labels,
)
from monitoring.report import write_monitor_report

__all__ = ["MonitorError", "Side", "alerts_of", "compare", "resolve_scores_dir", "run_monitor"]

EXPERIMENT = "monitoring"
LEVELS = (OK, WATCH, ACT)
TEST_FIGURES = ("test_auc", "ece", "lift_at_10", "value_captured_at_10")
FEATURES_AT_ONCE = 8  # read from a scored month's features file together
# what the realised history reads of every scored cutoff
HISTORY_COLUMNS = (
    "customer_id",
    CHURN.score,
    ELIGIBLE_CHURN,
    "contribution_12m",
    "list_group",
    "p_treat",
    "uplift",
)
# the same in every row: read from the first
VERSION_COLUMNS = (version_column(CHURN.model), version_column("uplift"))


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


def uplift_figures(version: str) -> dict | None:
    """The held-out figures the uplift model ``version`` was chosen on (its training run)."""
    client = MlflowClient()
    try:
        found = client.get_model_version("uplift", version)
        metrics = client.get_run(found.run_id).data.metrics
    except MlflowException:
        return None
    keep = ("qini", "qini_low", "qini_high", "policy_value", "risk_policy_value")
    return {
        "version": version,
        "run_id": found.run_id,
        **{k: metrics[k] for k in keep if k in metrics},
    }


def eligible_estimate(frame: pd.DataFrame, config: BankConfig) -> dict:
    """CBPE estimate of the churn model on the customers it has labels for."""
    rows = population(frame, CHURN, config)
    value = frame["contribution_12m"].to_numpy(dtype="float64")[rows]
    return estimate(frame[CHURN.score].to_numpy(dtype="float64")[rows], value)


def compare(reference: Side, current: Side, config: BankConfig) -> dict:
    """Drift and estimates of ``current`` against ``reference`` (no files, no MLflow): the
    figures the alerts are made of."""
    policy = config.monitoring
    ref = reference.frame
    rows = population(current.frame, reference.population, config)
    cur = current.frame[rows]
    products = held_products(cur.columns)
    features = [f for f in feature_names(products) if reference.has(f) and current.has(f)]
    scores = [s for s in score_columns(current.frame) if s in ref or s in reference.score_rows]
    if not features and not scores:
        raise MonitorError("the reference and the current month share no feature and no score")
    codes = segment_codes(ref, cur, list(policy.segments))
    parts = []
    for start in range(0, len(features), FEATURES_AT_ONCE):  # memory: a few columns at a time
        names = features[start : start + FEATURES_AT_ONCE]
        ref_part, cur_part = reference.columns(names), current.columns(names, rows)
        parts.append(
            drift_table(ref_part, cur_part, dict.fromkeys(names, "feature"), policy, codes=codes)
        )
    sides = {s: score_sides(reference, (ref, cur, codes), current, s, config) for s in scores}
    for score, (ref_rows, cur_rows, score_codes) in sides.items():
        parts.append(drift_table(ref_rows, cur_rows, {score: "score"}, policy, codes=score_codes))
    drift = pd.concat(parts, ignore_index=True)
    result = {
        "reference": {"source": reference.label, "cutoff": reference.cutoff, "rows": len(ref)},
        "current": {"source": current.label, "cutoff": current.cutoff, "rows": len(cur)},
        "features": len(features),
        "scores": scores,
        "segments": list(codes),
        "drift": drift,
        "score_distributions": {
            s: score_histograms(ref_rows[s], cur_rows[s])
            for s, (ref_rows, cur_rows, _) in sides.items()
        },
    }
    if CHURN.score in sides:
        result["estimate"] = eligible_estimate(cur, config)
        result["estimate"]["reference_mean_p"] = float(sides[CHURN.score][0][CHURN.score].mean())
        if CHURN.label in ref and ref[CHURN.label].notna().any():
            result["estimate"]["reference_observed_churn_rate"] = float(ref[CHURN.label].mean())
    return result


def score_sides(
    reference: Side,
    compared: tuple[pd.DataFrame, pd.DataFrame, dict],
    current: Side,
    score: str,
    config: BankConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(reference rows, current rows, their segment codes) ``score`` is judged on: the
    customers its model is for. ``compared`` are the features' two sides and segment codes.

    A run reference holds each score's own model's test rows (already that model's
    population): against them, every customer of the month in the same population. Otherwise
    both sides of the features are cut to the score's population (their codes with them)."""
    target = from_score(score)
    own = reference.score_rows.get(score)
    if own is None:
        ref, cur, codes = compared
        r, c = population(ref, target, config), population(cur, target, config)
        cut = {s: (ref_codes[r], cur_codes[c], v) for s, (ref_codes, cur_codes, v) in codes.items()}
        return ref.loc[r, [score]], cur.loc[c, [score]], cut
    month = current.frame
    segments = [s for s in config.monitoring.segments if s in month]
    rows = month.loc[population(month, target, config), [score, *segments]]
    return own, rows, segment_codes(own, rows, segments)


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
        found += history_alerts(entry, policy)
    return sorted(found, key=lambda a: (-LEVELS.index(a["band"]), -(a["psi"] or 0)))


def history_alerts(entry: dict, policy) -> list[dict]:
    """The findings of one scored cutoff of the history: realised AUC against the test AUC
    and against its estimate, the lists' effect, the uplift model's ranking."""
    found = []
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
    if control.get("uplift_qini_high") is not None and control["uplift_qini_high"] < 0:
        trained = (entry.get("uplift_training") or {}).get("qini")
        found.append(
            {
                "what": f"the uplift model ranks worse than chance ({entry['cutoff']}): "
                "retrain it or rank by risk ([lists] ranking)",
                "segment": ALL,
                "psi": None,
                "band": WATCH,
                "value": round(control["uplift_qini"], 5),
                "reference": None if trained is None else round(trained, 5),
            }
        )
    return found


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
    churn_version = version_column(CHURN.model)
    for cutoff, folder in sorted(folders.items()):
        scored = pd.read_parquet(folder / SCORES, columns=_present(folder / SCORES))
        stamped = first_row(folder / SCORES, _present(folder / SCORES, VERSION_COLUMNS))
        version = stamped.get(churn_version)
        entry = {"cutoff": cutoff, "source": str(folder)}
        est = eligible_estimate(scored, config) if ELIGIBLE_CHURN in scored else {}
        entry.update({k: est.get(k) for k in ("estimated_auc", "estimated_auc_low")})
        entry.update({k: est.get(k) for k in ("estimated_auc_high", "estimated_churn_rate")})
        entry["test_figures"] = test_figures(CHURN.model, version)
        uplift = version_column("uplift")
        if uplift in stamped:  # the Qini the uplift model was trained to, beside the month's
            entry["uplift_training"] = uplift_figures(str(stamped[uplift]))
        day = date.fromisoformat(cutoff)
        if last is not None and matured(day, last, config):
            step(f"labels of {cutoff}")
            cache = folder.parent / LABELS_FILE if folder.parent.parent == Path(runs_dir) else None
            labelled = with_labels(scored, churn_labels(warehouse, day, config, cache))
            known = labelled[CHURN.label].notna().to_numpy()
            entry["realised"] = realised(
                labelled[CHURN.label].to_numpy()[known].astype(int),
                labelled[CHURN.score].to_numpy(dtype="float64")[known],
                labelled["contribution_12m"].to_numpy(dtype="float64")[known],
            )
            entry["control"] = control_effect(labelled)
        else:
            entry["matured"] = False
            entry["control"] = control_effect(scored)
        entries.append(entry)
    return entries, note


def _present(path: Path, wanted: tuple[str, ...] = HISTORY_COLUMNS) -> list[str]:
    names = pq.read_schema(path).names
    return [c for c in names if c in wanted]


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
    segments = config.monitoring.segments
    current_side = read_scored(current_dir, segments)
    step("reading the reference")
    run_id = training_run_id(str(reference))
    if run_id is not None:
        reference_side = read_run_reference(run_id, current_side.versions, config)
    else:
        reference_side = read_scored(resolve_scores_dir(reference, runs_dir), segments)
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
    result["test_figures"] = test_figures(CHURN.model, current.versions.get(CHURN.model))
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
            "psi_scores": dict(
                zip(
                    overall.loc[overall["kind"] == "score", "what"],
                    overall.loc[overall["kind"] == "score", "psi"],
                    strict=True,
                )
            ),
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
    for score, value in summary["psi_scores"].items():
        metrics[f"psi_{score}"] = value
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
