"""One training run, in two steps per target: :func:`fit_label` fits, calibrates and evaluates
the model of an out-of-time split against the baselines and the truth, and writes nothing;
:func:`log_fitted` draws the plots, writes the card and logs and registers it all in MLflow.
:func:`train_task` runs both for every target of a task under one parent run."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from features.catalog import CATALOG_VERSION, catalog
from features.config import BankConfig
from features.products import products_to_json, read_products_metadata
from features.targets import CHURN, UPGRADE, Target, all_targets, cross_sell, label_columns
from models.artifact import LoggedModel, ModelArtifact
from models.boosters import lgb
from models.calibration import Calibrator
from models.provenance import code_commit
from training.baselines import baseline_scores
from training.calibrate import fit_calibrator
from training.card import ModelCardInfo, SplitSummary, model_card
from training.dataset import (
    Dataset,
    DatasetError,
    LeakageError,
    read_features,
    refuse_perfect_predictors,
    split_out_of_time,
)
from training.evaluate import evaluate, ranking_metrics, refuse_beating_the_oracle
from training.plots import (
    SHAP_SAMPLE_ROWS,
    plot_calibration,
    plot_gains,
    plot_importance,
    plot_roc,
    plot_shap_summary,
)
from training.register import register_model
from training.train import TrainConfig, fit_booster
from training.tune import tune

SUMMARY_METRICS = (
    "test_auc",
    "lightgbm_defaults_test_auc",
    "logistic_regression_test_auc",
    "oracle_auc",
    "auc_to_oracle",
    "ece",
    "brier",
    "lift_at_10",
)


@dataclass(frozen=True)
class FittedModel:
    """One target's model and everything measured about it, before anything is logged."""

    target: Target
    ds: Dataset
    config: TrainConfig  # the tuned configuration when trials were run
    booster: lgb.Booster
    calibrator: Calibrator
    # how the calibration was chosen: each method's out-of-time ECE (or cross-validated Brier)
    brier_by_method: dict[str, float | str]
    p: np.ndarray  # calibrated probabilities on the test rows
    truth: np.ndarray | None  # the synthetic bank's true probabilities on the test rows
    metrics: dict[str, float]  # the model's test metrics and its margins over the baselines
    baselines: dict[str, dict[str, float]]  # each baseline's test metrics
    scores: dict[str, np.ndarray]  # each baseline's scores on the test rows
    study: dict | None = None  # the tuning summary, when trials were run


def targets_for(task: str, frame: pd.DataFrame) -> list[Target]:
    """The targets ``task`` trains, in order; cross-sell ones are those the frame has labels
    for."""
    products = sorted(t.product for t in label_columns(frame.columns) if t.kind == "cross_sell")
    return {
        "churn": [CHURN],
        "upgrade": [UPGRADE],
        "cross_sell": [cross_sell(p) for p in products],
        "all": all_targets(products),
    }[task]


def fit_label(
    ds: Dataset, target: Target, config: TrainConfig, bank: BankConfig, trials: int = 0
) -> FittedModel:
    """Tune (``trials`` > 0), fit, calibrate on validation and evaluate on test against the
    baselines and, where the frame has it, the truth. No MLflow, no files.

    Raises :class:`LeakageError` when an input alone predicts the label or the model beats
    the truth."""
    refuse_perfect_predictors(ds.train.x, ds.train.y)
    study = None
    if trials:
        config, study = tune(ds, config, trials)
    booster = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, config)
    months = ds.valid.rows["cutoff"].astype(str).to_numpy()
    calibrator, brier_by_method = fit_calibrator(
        booster.predict(ds.valid.x), ds.valid.y, months=months
    )
    p = calibrator.apply(booster.predict(ds.test.x))
    # another horizon than the synthetic truth's has no truth column, hence no oracle
    truth_name = target.truth(bank.churn.horizon_months)
    rows = ds.test.rows
    truth = rows[truth_name].to_numpy(dtype="float64") if truth_name in rows else None
    value = rows["contribution_12m"].to_numpy(dtype="float64")
    metrics = evaluate(ds.test.y, p, value=value, truth=truth)
    refuse_beating_the_oracle(metrics, target.label)
    scores = baseline_scores(target, ds, bank.tiers, config)
    baselines = {b: ranking_metrics(ds.test.y, s) for b, s in scores.items()}
    for b, m in baselines.items():
        if m["lift_at_10"] > 0:  # a baseline that finds nobody in its top 10% has no ratio
            metrics[f"lift_at_10_over_{b}"] = metrics["lift_at_10"] / m["lift_at_10"]
        metrics[f"{b}_test_auc"] = m["test_auc"]
    return FittedModel(
        target=target,
        ds=ds,
        config=config,
        booster=booster,
        calibrator=calibrator,
        brier_by_method=brier_by_method,
        p=p,
        truth=truth,
        metrics=metrics,
        baselines=baselines,
        scores=scores,
        study=study,
    )


def log_fitted(
    fitted: FittedModel,
    run_id: str,
    source: str,
    bank: BankConfig,
    products: tuple = (),
    plots: bool = True,
) -> LoggedModel:
    """In the active run ``run_id``: the tuning study, parameters, metrics, data and
    calibration records, plots (unless ``plots`` is false) and model card; then register the
    model with its test rows."""
    fingerprint = fitted.ds.fingerprint()
    _log_records(fitted, fingerprint, source, bank)
    if plots:
        with tempfile.TemporaryDirectory() as tmp:
            draw_plots(fitted, Path(tmp))
            mlflow.log_artifacts(tmp, "plots")
    else:  # whoever opens the run sees why it has none
        mlflow.set_tag("plots", "left out (--no-plots)")
    card = model_card(_card_info(fitted, fingerprint, run_id, source, bank))
    mlflow.log_text(card, "model_card.md")
    ds = fitted.ds
    artifact = ModelArtifact(
        fitted.booster,
        fitted.calibrator,
        list(ds.inputs),
        metadata={
            "catalog_version": CATALOG_VERSION,
            "label": fitted.target.label,
            "test_cutoff": ds.test.cutoffs[-1],
            "products": products_to_json(products),
        },
    )
    # the example and signature typed as the feature file holds the inputs (int, bool, float)
    return register_model(artifact, fitted.target.model, ds.test.rows, test_rows=ds.test.rows)


def _log_records(fitted: FittedModel, fingerprint: dict, source: str, bank: BankConfig) -> None:
    ds = fitted.ds
    if fitted.study is not None:
        mlflow.log_dict(fitted.study, "tuning/study.json")
        mlflow.log_metric("tuning_best_valid_auc", fitted.study["best_valid_auc"])
        mlflow.set_tag("tuned_trials", str(fitted.study["trials"]))
    mlflow.log_params(
        {
            **asdict(fitted.config),
            "label": fitted.target.label,
            "inputs": len(ds.inputs),
            "calibration": fitted.calibrator.method,
            "best_iteration": fitted.booster.best_iteration,
            "features_path": source,
            **split_params(ds, bank),
        }
    )
    mlflow.log_metrics({k: v for k, v in fitted.metrics.items() if np.isfinite(v)})
    mlflow.log_dict(fingerprint, "data/fingerprint.json")
    mlflow.log_dict(
        {"catalog_version": CATALOG_VERSION, "features": list(ds.inputs)}, "data/features.json"
    )
    mlflow.log_dict(fitted.calibrator.to_json(), "model_extras/calibration.json")
    mlflow.log_dict(fitted.brier_by_method, "model_extras/calibration_choice.json")


def draw_plots(fitted: FittedModel, folder: Path) -> None:
    """ROC, gains, calibration, importance and SHAP summary of the test rows into ``folder``."""
    ds, p, label = fitted.ds, fitted.p, fitted.ds.label
    curves = {"model": p, **fitted.scores}
    if fitted.truth is not None and np.isfinite(fitted.truth).all():
        curves["oracle (truth)"] = fitted.truth
    plot_roc(ds.test.y, curves, folder / "roc.png", title=f"{label}: ROC on test")
    plot_gains(ds.test.y, curves, folder / "gains.png", title=f"{label}: gains and lift")
    plot_calibration(ds.test.y, p, folder / "calibration.png", title=f"{label}: calibration")
    gain = fitted.booster.feature_importance("gain")
    plot_importance(list(ds.inputs), gain, folder / "importance.png", title=label)
    # contributions cost time per row: compute them on the sample the plot draws, no more
    sample = ds.test.x.sample(min(SHAP_SAMPLE_ROWS, len(ds.test.x)), random_state=0)
    contributions = fitted.booster.predict(sample, pred_contrib=True)
    plot_shap_summary(contributions, sample, folder / "shap_summary.png")


def split_params(ds: Dataset, bank: BankConfig) -> dict[str, str]:
    """The cutoffs of each split and the embargo, for MLflow and ``--json``."""
    return {
        "train_cutoffs": ",".join(ds.train.cutoffs),
        "valid_cutoff": ",".join(ds.valid.cutoffs),
        "test_cutoff": ",".join(ds.test.cutoffs),
        "embargo_months": str(bank.churn.horizon_months),
    }


def _card_info(
    fitted: FittedModel, fingerprint: dict, run_id: str, source: str, bank: BankConfig
) -> ModelCardInfo:
    ds, name, horizon = fitted.ds, fitted.target.model, bank.churn.horizon_months
    sensitive = tuple(f for f, entry in catalog().items() if entry.sensitive and f in ds.inputs)
    splits = tuple(
        SplitSummary(part, len(split.y), split.cutoffs, split.positive_rate)
        for part, split in (("train", ds.train), ("validation", ds.valid), ("test", ds.test))
    )
    return ModelCardInfo(
        model_name=name,
        task=name,
        purpose=f"Rank customers by the probability of {name.replace('_', ' ')} within "
        f"{horizon} months.",
        splits=splits,
        data_fingerprint=fingerprint["hash"],
        label_definition=fitted.target.describe(horizon, bank.churn.describe()),
        features=ds.inputs,
        catalog_version=CATALOG_VERSION,
        params=asdict(fitted.config),
        calibration=fitted.calibrator.method,
        test_metrics=fitted.metrics,
        baseline_metrics=fitted.baselines,
        git_sha=code_commit(),
        run_id=run_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        data_source=source,
        sensitive_features=sensitive,
    )


def train_label(
    frame: pd.DataFrame,
    target: Target,
    config: TrainConfig,
    source: str,
    trials: int = 0,
    bank: BankConfig | None = None,
    products: tuple = (),
    tags: dict[str, str] | None = None,
    plots: bool = True,
) -> dict:
    """Fit (optionally tune) and log and register the model of ``target`` in a nested MLflow
    run. ``bank`` gives the horizon (the embargo), tier bounds and label text; ``products``
    the catalogue the feature file was built with (travels with the model); ``plots`` false
    leaves the run without its plots (nearly half a small bank's training time)."""
    bank = bank or BankConfig()
    # split before the run opens: a target that cannot be trained leaves no run behind
    ds = split_out_of_time(frame, target.label, bank.churn.horizon_months)
    with mlflow.start_run(run_name=target.model, nested=True) as run:
        mlflow.set_tags(
            {
                **(tags or {}),
                "label": target.label,
                "model": target.model,
                "git_sha": code_commit(),
                "source": source,
            }
        )
        fitted = fit_label(ds, target, config, bank, trials)
        logged = log_fitted(fitted, run.info.run_id, source, bank, products, plots)
    return {
        "model": target.model,
        "version": logged.version,
        "run_id": run.info.run_id,
        "sha256": logged.sha256,
        "metrics": fitted.metrics,
        "splits": split_params(ds, bank),
    }


def summarise(results: list[dict]) -> tuple[dict[str, dict], dict[str, float]]:
    """Per model, the summary metrics and its splits; and each summary metric's mean over the
    models that have it."""
    per_model = {
        r["model"]: {**{k: r["metrics"].get(k) for k in SUMMARY_METRICS}, **r["splits"]}
        for r in results
    }
    means = {
        k: float(np.mean([m[k] for m in per_model.values() if m.get(k) is not None]))
        for k in SUMMARY_METRICS
        if any(m.get(k) is not None for m in per_model.values())
    }
    return per_model, means


def train_task(
    features_path: Path,
    task: str,
    config: TrainConfig,
    warn=print,
    trials: int = 0,
    progress=lambda done, total: None,
    bank: BankConfig | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    plots: bool = True,
) -> dict:
    """Train every model of ``task`` under one parent run; the summary the CLI prints.

    ``progress(done, total)`` is called before the first model and after each one; ``tags``
    go on the parent run and on every model's run; ``plots`` as for :func:`train_label`."""
    bank = bank or BankConfig()
    frame = read_features(features_path)
    products = read_products_metadata(features_path)
    results = []
    targets = targets_for(task, frame)
    with mlflow.start_run(run_name=run_name or f"train {task}") as parent:
        mlflow.set_tags({**(tags or {}), "task": task, "git_sha": code_commit()})
        progress(0, len(targets))
        for done, target in enumerate(targets, start=1):
            try:
                results.append(
                    train_label(
                        frame,
                        target,
                        config,
                        str(features_path),
                        trials,
                        bank,
                        products,
                        tags,
                        plots,
                    )
                )
            except LeakageError:
                raise
            except DatasetError as exc:
                if target.kind != "cross_sell":
                    raise
                # e.g. demand deposits: everybody holds one, so nobody can buy one
                warn(f"skipped {target.label}: {exc}")
            finally:
                progress(done, len(targets))
        if not results:
            raise DatasetError(f"no model could be trained for task {task!r}")
        per_model, means = summarise(results)
        mlflow.log_metrics({f"mean_{k}": v for k, v in means.items()})
        mlflow.log_dict(per_model, "per_model_metrics.json")
    return {
        "task": task,
        "run_id": parent.info.run_id,
        "models": {r["model"]: r["version"] for r in results},
        "metrics": means,
        "per_model": per_model,
        "features": str(features_path),
    }


def dumps(summary: dict) -> str:
    return json.dumps(summary, indent=2, default=float)
