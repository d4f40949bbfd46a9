"""Rolling-origin backtest for model-risk review: for every cutoff, a model trained only on
the cutoffs before it (the last of them for early stopping and calibration), tested on it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.provenance import code_commit
from training.calibrate import fit_calibrator
from training.dataset import (
    DatasetError,
    dataset_at,
    embargoed_cutoffs,
    labelled_cutoffs,
    read_features,
)
from training.evaluate import ece
from training.plots import plot_backtest
from training.train import TrainConfig, fit_booster

MIN_TRAIN_CUTOFFS = 1


def backtest(frame: pd.DataFrame, label: str, config: TrainConfig, horizon: int) -> list[dict]:
    """For every cutoff that has embargoed training and validation cutoffs before it: a model
    trained on those only, tested on it (the same gaps as training, docs/design.md §5)."""
    cutoffs = labelled_cutoffs(frame, label)
    plans = []
    for test in cutoffs:
        train, valid = embargoed_cutoffs([c for c in cutoffs if c < test], test, horizon)
        if len(train) >= MIN_TRAIN_CUTOFFS:
            plans.append((train, valid, test))
    if not plans:
        raise DatasetError(
            f"{label}: {len(cutoffs)} labelled cutoff(s) leave no test cutoff with embargoed "
            f"training and validation cutoffs before it (gaps of {horizon} months)"
        )
    results = []
    for train, valid, test in plans:
        ds = dataset_at(frame, label, train, valid, test)
        booster = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, config)
        months = ds.valid.rows["cutoff"].astype(str).to_numpy()
        calibrator, _ = fit_calibrator(
            booster.predict(ds.valid.x), ds.valid.y, config.seed, months=months
        )
        p = calibrator.apply(booster.predict(ds.test.x))
        results.append(
            {
                "cutoff": str(test),
                "train_cutoffs": len(train),
                "valid_cutoff": ",".join(str(v) for v in valid),
                "rows": len(ds.test.y),
                "positives": int(ds.test.y.sum()),
                "auc": float(roc_auc_score(ds.test.y, p)),
                "ece": ece(ds.test.y, p),
            }
        )
    return results


def run_backtest(features_path: Path, label: str, config: TrainConfig, horizon: int) -> dict:
    frame = read_features(features_path)
    with mlflow.start_run(run_name=f"backtest {label}") as run:
        mlflow.set_tags({"task": "backtest", "label": label, "git_sha": code_commit()})
        mlflow.log_params({"features_path": str(features_path), "label": label})
        mlflow.log_param("embargo_months", horizon)
        results = backtest(frame, label, config, horizon)
        for step, r in enumerate(results):
            mlflow.log_metrics({"backtest_auc": r["auc"], "backtest_ece": r["ece"]}, step=step)
        aucs = np.array([r["auc"] for r in results])
        mlflow.log_metrics(
            {"backtest_auc_mean": float(aucs.mean()), "backtest_auc_min": float(aucs.min())}
        )
        mlflow.log_dict({"cutoffs": results}, "backtest.json")
        with tempfile.TemporaryDirectory() as tmp:
            plot = plot_backtest(
                [r["cutoff"] for r in results],
                list(aucs),
                [r["ece"] for r in results],
                Path(tmp) / "backtest.png",
            )
            mlflow.log_artifact(str(plot), "plots")
    return {
        "task": "backtest",
        "label": label,
        "run_id": run.info.run_id,
        "cutoffs": results,
        "metrics": {
            "auc_mean": float(aucs.mean()),
            "auc_min": float(aucs.min()),
            "ece_max": float(max(r["ece"] for r in results)),
        },
    }
