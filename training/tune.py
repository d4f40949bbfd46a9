"""Optional hyper-parameter search with Optuna: seeded TPE on validation AUC, with trials
pruned early (median rule) when their validation AUC lags. The test set is never seen."""

from __future__ import annotations

import optuna

from models.boosters import lgb
from training.dataset import Dataset
from training.train import TrainConfig, fit_booster

REPORT_EVERY = 10


def _pruning_callback(trial: optuna.Trial):
    def callback(env: lgb.callback.CallbackEnv) -> None:
        if env.iteration % REPORT_EVERY:
            return
        for _, metric, value, _ in env.evaluation_result_list:
            if metric == "auc":
                trial.report(value, env.iteration)
        if trial.should_prune():
            raise optuna.TrialPruned(f"validation AUC lags at iteration {env.iteration}")

    return callback


def suggest(trial: optuna.Trial, base: TrainConfig) -> TrainConfig:
    return base.with_params(
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        num_leaves=trial.suggest_int("num_leaves", 7, 31),
        max_depth=trial.suggest_int("max_depth", 3, 8),
        min_data_in_leaf=trial.suggest_int("min_data_in_leaf", 10, 200, log=True),
        feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
        bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
        lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    )


def tune(ds: Dataset, base: TrainConfig, trials: int) -> tuple[TrainConfig, dict]:
    """The configuration with the best validation AUC after ``trials`` trials, and a summary."""

    def objective(trial: optuna.Trial) -> float:
        config = suggest(trial, base)
        booster = fit_booster(
            ds.train.x,
            ds.train.y,
            ds.valid.x,
            ds.valid.y,
            config,
            extra_callbacks=[_pruning_callback(trial)],
        )
        return booster.best_score["valid_0"]["auc"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=50),
    )
    study.optimize(objective, n_trials=trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    best = study.best_trial
    summary = {
        "trials": trials,
        "pruned": pruned,
        "best_valid_auc": best.value,
        "best_params": best.params,
    }
    return suggest(best, base), summary
