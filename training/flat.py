"""Flat-table mode: a prepared table, stratified 5-fold cross-validation with the defaults,
logged to MLflow and optionally registered — for data scientists who bring their own table.

Within each fold a stratified tenth of the training part is held back for early stopping, so
the held-out fold never chooses the number of trees. A registered model is refitted on every
row for the median of the folds' best iteration counts.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from features.sources.flat import FlatTable, load_flat_table
from models.provenance import code_commit
from training.dataset import refuse_perfect_predictors
from training.register import log_booster
from training.train import TrainConfig, fit_booster, fit_fixed_rounds

FOLDS = 5
EARLY_STOPPING_SHARE = 0.1


def cross_validate(table: FlatTable, config: TrainConfig, folds: int = FOLDS) -> dict:
    x, y = table.features, table.target.to_numpy(dtype=np.int8)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    aucs, rounds = [], []
    for fit_rows, held_out in splitter.split(x, y):
        train_rows, stop_rows = train_test_split(
            fit_rows,
            test_size=EARLY_STOPPING_SHARE,
            stratify=y[fit_rows],
            random_state=config.seed,
        )
        booster = fit_booster(
            x.iloc[train_rows], y[train_rows], x.iloc[stop_rows], y[stop_rows], config
        )
        aucs.append(float(roc_auc_score(y[held_out], booster.predict(x.iloc[held_out]))))
        rounds.append(booster.best_iteration)
    return {
        "cv_auc": float(np.mean(aucs)),
        "cv_auc_std": float(np.std(aucs)),
        "fold_auc": aucs,
        "best_iterations": rounds,
    }


def train_flat(
    path: Path,
    target: str,
    positive: str | None = None,
    id_column: str | None = None,
    drop: tuple[str, ...] = (),
    register: str | None = None,
    config: TrainConfig | None = None,
    warn=print,
) -> dict:
    """Load, cross-validate, log; with ``register`` also refit on all rows and register."""
    config = config or TrainConfig.for_flat_tables()
    table = load_flat_table(Path(path), target, positive, id_column, drop)
    for text in table.warnings:
        warn(text)
    x, y = table.features, table.target.to_numpy(dtype=np.int8)
    refuse_perfect_predictors(x.select_dtypes("number"), y)
    with mlflow.start_run(run_name=f"flat {Path(path).name}") as run:
        mlflow.set_tags({"task": "flat", "table": str(path), "git_sha": code_commit()})
        cv = cross_validate(table, config)
        mlflow.log_params(
            {
                "target": target,
                "positive": positive,
                "rows": len(y),
                "features": x.shape[1],
                "folds": FOLDS,
                **config.__dict__,
            }
        )
        mlflow.log_metrics(
            {
                "cv_auc": cv["cv_auc"],
                "cv_auc_std": cv["cv_auc_std"],
                "positive_rate": float(y.mean()),
            }
        )
        mlflow.log_dict(
            {
                "dropped": table.dropped,
                "warnings": table.warnings,
                "features": list(x.columns),
                **cv,
            },
            "flat_summary.json",
        )
        summary = {
            "task": "flat",
            "run_id": run.info.run_id,
            "table": str(path),
            "rows": len(y),
            "features": list(x.columns),
            "dropped": table.dropped,
            "metrics": {"cv_auc": cv["cv_auc"], "cv_auc_std": cv["cv_auc_std"]},
            "fold_auc": cv["fold_auc"],
            "models": {},
        }
        if register:
            rounds = max(1, int(np.median(cv["best_iterations"])))
            booster = fit_fixed_rounds(x, y, config, rounds)
            metadata = {
                "features": list(x.columns),
                "target": target,
                "positive": positive,
                "calibration": None,
                "label": target,
            }
            logged = log_booster(booster, register, x.head(5), metadata)
            summary["models"] = {register: logged.version}
    return summary
