"""One training run: split out of time, fit, calibrate, evaluate against baselines and the
truth, draw, write the card, and log and register everything in MLflow."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from features.catalog import CATALOG_VERSION, catalog
from features.config import BankConfig
from features.products import products_to_json, read_products_metadata
from models.artifact import ModelArtifact
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
from training.evaluate import evaluate, lift_and_capture, refuse_beating_the_oracle
from training.plots import (
    plot_calibration,
    plot_gains,
    plot_importance,
    plot_roc,
    plot_shap_summary,
)
from training.register import git_sha, register_model
from training.train import TrainConfig, fit_booster
from training.tune import tune

TASKS = ("churn", "cross_sell", "upgrade", "all")
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
SHAP_ROWS = 5_000


def label_text(label: str, bank: BankConfig) -> str:
    """The label in words, from the configuration (model cards, run records)."""
    h = bank.churn.horizon_months
    if label == "label_churn":
        return bank.churn.describe()
    if label == "label_upgrade":
        return f"tier {h} months after the cutoff higher than at the cutoff"
    product = label.removeprefix("label_cross_sell_")
    return f"{product}: not held at the cutoff, held (open) in any month of the next {h}"


def labels_for(task: str, frame: pd.DataFrame) -> list[str]:
    cross_sell = sorted(c for c in frame.columns if c.startswith("label_cross_sell_"))
    return {
        "churn": ["label_churn"],
        "upgrade": ["label_upgrade"],
        "cross_sell": cross_sell,
        "all": ["label_churn", *cross_sell, "label_upgrade"],
    }[task]


def truth_column(label: str) -> str:
    if label.startswith("label_cross_sell_"):
        return "truth_p_buy_3m_" + label.removeprefix("label_cross_sell_")
    return "truth_p_" + label.removeprefix("label_") + "_3m"


def _baseline_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {
        "test_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        **lift_and_capture(y, scores),
    }


def _plots(folder: Path, ds: Dataset, booster, p: np.ndarray, scores: dict, truth) -> None:
    curves = {"model": p, **scores}
    if truth is not None and np.isfinite(truth).all():
        curves["oracle (truth)"] = truth
    plot_roc(ds.test.y, curves, folder / "roc.png", title=f"{ds.label}: ROC on test")
    plot_gains(ds.test.y, curves, folder / "gains.png", title=f"{ds.label}: gains and lift")
    plot_calibration(ds.test.y, p, folder / "calibration.png", title=f"{ds.label}: calibration")
    gain = booster.feature_importance("gain")
    plot_importance(list(ds.inputs), gain, folder / "importance.png", title=ds.label)
    sample = ds.test.x.sample(min(SHAP_ROWS, len(ds.test.x)), random_state=0)
    contributions = booster.predict(sample, pred_contrib=True)
    plot_shap_summary(contributions, sample, folder / "shap_summary.png")


def train_label(
    frame: pd.DataFrame,
    label: str,
    config: TrainConfig,
    source: str,
    trials: int = 0,
    bank: BankConfig | None = None,
    products: tuple = (),
    tags: dict[str, str] | None = None,
) -> dict:
    """Train (optionally tune), evaluate and register the model for one label in a nested
    MLflow run. ``bank`` gives the horizon (the embargo), tier bounds and label text;
    ``products`` the catalogue the feature file was built with (travels with the model)."""
    bank = bank or BankConfig()
    name = label.removeprefix("label_")
    ds = split_out_of_time(frame, label, bank.churn.horizon_months)
    with mlflow.start_run(run_name=name, nested=True) as run:
        mlflow.set_tags(
            {**(tags or {}), "label": label, "model": name, "git_sha": git_sha(), "source": source}
        )
        refuse_perfect_predictors(ds.train.x, ds.train.y)
        if trials:
            config, study = tune(ds, config, trials)
            mlflow.log_dict(study, "tuning/study.json")
            mlflow.log_metric("tuning_best_valid_auc", study["best_valid_auc"])
            mlflow.set_tag("tuned_trials", str(trials))
        booster = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, config)
        calibrator, brier_by_method = fit_calibrator(booster.predict(ds.valid.x), ds.valid.y)
        p = calibrator.apply(booster.predict(ds.test.x))
        truth_name = truth_column(label)
        truth = ds.test.rows[truth_name].to_numpy(dtype="float64") if truth_name in frame else None
        value = ds.test.rows["contribution_12m"].to_numpy(dtype="float64")
        metrics = evaluate(ds.test.y, p, value=value, truth=truth)
        refuse_beating_the_oracle(metrics, label)
        scores = baseline_scores(label, ds, bank.tiers, config)
        baselines = {b: _baseline_metrics(ds.test.y, s) for b, s in scores.items()}
        for b, m in baselines.items():
            if m["lift_at_10"] > 0:  # a baseline that finds nobody in its top 10% has no ratio
                metrics[f"lift_at_10_over_{b}"] = metrics["lift_at_10"] / m["lift_at_10"]
            metrics[f"{b}_test_auc"] = m["test_auc"]
        fingerprint = ds.fingerprint()
        mlflow.log_params(
            {
                **asdict(config),
                "label": label,
                "inputs": len(ds.inputs),
                "calibration": calibrator.method,
                "best_iteration": booster.best_iteration,
                "features_path": source,
                **split_params(ds, bank),
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_dict(fingerprint, "data/fingerprint.json")
        mlflow.log_dict(
            {"catalog_version": CATALOG_VERSION, "features": list(ds.inputs)}, "data/features.json"
        )
        mlflow.log_dict(calibrator.to_json(), "model_extras/calibration.json")
        mlflow.log_dict(brier_by_method, "model_extras/calibration_brier_cv.json")
        with tempfile.TemporaryDirectory() as tmp:
            _plots(Path(tmp), ds, booster, p, scores, truth)
            mlflow.log_artifacts(tmp, "plots")
        card = model_card(
            _card_info(
                name,
                ds,
                config,
                calibrator.method,
                metrics,
                baselines,
                fingerprint,
                run.info.run_id,
                source,
                bank,
            )
        )
        mlflow.log_text(card, "model_card.md")
        artifact = ModelArtifact(
            booster,
            calibrator,
            list(ds.inputs),
            metadata={
                "catalog_version": CATALOG_VERSION,
                "label": label,
                "test_cutoff": ds.test.cutoffs[-1],
                "products": products_to_json(products),
            },
        )
        logged = register_model(artifact, name, ds.test.x.head(5), test_rows=ds.test.rows)
    return {
        "model": name,
        "version": logged.version,
        "run_id": run.info.run_id,
        "sha256": logged.sha256,
        "metrics": metrics,
        "splits": split_params(ds, bank),
    }


def split_params(ds: Dataset, bank: BankConfig) -> dict[str, str]:
    """The cutoffs of each split and the embargo, for MLflow and ``--json``."""
    return {
        "train_cutoffs": ",".join(ds.train.cutoffs),
        "valid_cutoff": ",".join(ds.valid.cutoffs),
        "test_cutoff": ",".join(ds.test.cutoffs),
        "embargo_months": str(bank.churn.horizon_months),
    }


def _card_info(
    name, ds, config, calibration, metrics, baselines, fingerprint, run_id, source, bank
):
    sensitive = tuple(f for f, entry in catalog().items() if entry.sensitive and f in ds.inputs)
    splits = tuple(
        SplitSummary(part, len(split.y), split.cutoffs, split.positive_rate)
        for part, split in (("train", ds.train), ("validation", ds.valid), ("test", ds.test))
    )
    return ModelCardInfo(
        model_name=name,
        task=name,
        purpose=f"Rank customers by the probability of {name.replace('_', ' ')} within "
        f"{bank.churn.horizon_months} months.",
        splits=splits,
        data_fingerprint=fingerprint["hash"],
        label_definition=label_text(ds.label, bank),
        features=ds.inputs,
        catalog_version=CATALOG_VERSION,
        params=asdict(config),
        calibration=calibration,
        test_metrics=metrics,
        baseline_metrics=baselines,
        git_sha=git_sha(),
        run_id=run_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        data_source=source,
        sensitive_features=sensitive,
    )


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
) -> dict:
    """Train every model of ``task`` under one parent run; the summary the CLI prints.

    ``progress(done, total)`` is called before the first model and after each one; ``tags``
    go on the parent run and on every model's run."""
    bank = bank or BankConfig()
    frame = read_features(features_path)
    products = read_products_metadata(features_path)
    results = []
    labels = labels_for(task, frame)
    with mlflow.start_run(run_name=run_name or f"train {task}") as parent:
        mlflow.set_tags({**(tags or {}), "task": task, "git_sha": git_sha()})
        progress(0, len(labels))
        for done, label in enumerate(labels, start=1):
            try:
                results.append(
                    train_label(
                        frame, label, config, str(features_path), trials, bank, products, tags
                    )
                )
            except LeakageError:
                raise
            except DatasetError as exc:
                if not label.startswith("label_cross_sell_"):
                    raise
                # e.g. demand deposits: everybody holds one, so nobody can buy one
                warn(f"skipped {label}: {exc}")
            finally:
                progress(done, len(labels))
        if not results:
            raise DatasetError(f"no model could be trained for task {task!r}")
        per_model = {
            r["model"]: {**{k: r["metrics"].get(k) for k in SUMMARY_METRICS}, **r["splits"]}
            for r in results
        }
        means = {
            k: float(np.mean([m[k] for m in per_model.values() if m.get(k) is not None]))
            for k in SUMMARY_METRICS
            if any(m.get(k) is not None for m in per_model.values())
        }
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
