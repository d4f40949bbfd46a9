"""`retain train` and `retain backtest`: models trained out of time (or on a flat table) and
logged to MLflow as challengers, and the rolling-origin backtest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retain.options import (
    ConfigOption,
    PlotsOption,
    WarehouseOption,
    bank_config,
    open_registry,
    warehouse_location,
)
from retain.output import (
    JsonOption,
    console,
    fail,
    fmt_metric,
    progress_bar,
    save_json,
    table,
    warn,
)


def train(
    features_path: Annotated[
        Path | None, typer.Option("--features", help="Feature file from `retain features`.")
    ] = None,
    task: Annotated[
        str,
        typer.Option(
            help="churn, cross_sell, upgrade or all; or uplift (the effect of a call, from the "
            "warehouse's list_assignments)."
        ),
    ] = "all",
    warehouse: WarehouseOption = None,
    trials: Annotated[int, typer.Option(help="Optuna trials (0: the defaults).")] = 0,
    table_path: Annotated[
        Path | None, typer.Option("--table", help="A prepared flat table (CSV) instead.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Flat table: the target column.")] = None,
    positive: Annotated[str | None, typer.Option(help="Flat table: the positive value.")] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="Flat table: id column.")] = None,
    drop: Annotated[str, typer.Option(help="Flat table: columns to drop, A,B.")] = "",
    register: Annotated[
        str | None, typer.Option(help="Flat table: register the model under this name.")
    ] = None,
    config: ConfigOption = None,
    experiment: Annotated[
        str, typer.Option(help="MLflow experiment to log the runs in.")
    ] = "retain",
    run_name: Annotated[
        str | None, typer.Option("--run-name", help="Name of the run (default: train TASK).")
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option("--tag", help="KEY=VALUE on the run and its model runs; repeatable."),
    ] = None,
    plots: PlotsOption = True,
    json_path: JsonOption = None,
) -> None:
    """Train LightGBM models out of time, log and register them in MLflow (as challenger)."""
    from features.targets import TASKS
    from training.dataset import DatasetError

    if table_path is not None:
        _train_flat(table_path, target, positive, id_column, drop, register, json_path)
        return
    if features_path is None:
        fail("give --features FILE (or --table FILE for a flat table)", 2)
    if task not in (*TASKS, "uplift"):
        fail(f"--task must be one of {', '.join(TASKS)} or uplift, not {task!r}", 2)
    run_tags = _run_tags(tags or [])
    _exists(features_path)  # before MLflow and the training code load (seconds)
    if task == "uplift":
        _train_uplift(features_path, warehouse, config, experiment, run_tags, json_path)
        return
    open_registry(experiment)  # a registry that does not answer: said before the heavy imports
    from training.run import train_task
    from training.train import TrainConfig

    try:
        with progress_bar(f"training {task}: models") as update:
            summary = train_task(
                features_path,
                task,
                TrainConfig(),
                warn,
                trials,
                update,
                bank=bank_config(config),
                run_name=run_name,
                tags=run_tags,
                plots=plots,
            )
    except DatasetError as exc:
        fail(str(exc), 1)
    _print_trained(task, summary)
    save_json(json_path, summary)


def _train_uplift(features_path, warehouse, config, experiment, run_tags, json_path) -> None:
    bank = bank_config(config)
    location = warehouse_location(warehouse, bank)
    open_registry(experiment)
    from models.registry import RegistryError
    from training.dataset import DatasetError
    from training.uplift_run import train_uplift

    try:
        with console.status("training uplift: T-, X-, DR-, shift and R-learners…"):
            summary = train_uplift(features_path, location, bank, run_tags)
    except (DatasetError, RegistryError) as exc:
        fail(str(exc), 1)
    rows = [
        (
            name + (" (chosen)" if name == summary["learner"] else ""),
            f"{f['qini']:.5f} [{f['qini_low']:.5f}, {f['qini_high']:.5f}]",
            f"{f['auuc']:.5f}",
            f"{f['uplift_at_k']:.4f}",
            f"{f['policy_value']:,.0f} "
            f"[{f['policy_value_low']:,.0f}, {f['policy_value_high']:,.0f}]",
            f"{f['risk_policy_value']:,.0f}",
        )
        for name, f in summary["figures"].items()
    ]
    title = (
        f"uplift v{summary['version']} (run {summary['run_id'][:8]}), held out "
        f"{', '.join(summary['held_out_cutoffs'])}; the new version is challenger"
    )
    columns = ["learner", "Qini [95%]", "AUUC", "uplift@k", "saved per call [95%]", "risk ranking"]
    console.print(table(title, columns, rows))
    save_json(json_path, summary)


def _print_trained(task: str, summary: dict) -> None:
    rows = [
        (
            model,
            summary["models"][model],
            *(
                fmt_metric(m.get(k))
                for k in (
                    "test_auc",
                    "lightgbm_defaults_test_auc",
                    "oracle_auc",
                    "auc_to_oracle",
                    "ece",
                    "lift_at_10",
                )
            ),
            m.get("test_cutoff", ""),
        )
        for model, m in summary["per_model"].items()
    ]
    console.print(
        table(
            f"trained {task} (run {summary['run_id']}); new versions are challengers",
            [
                "model",
                "version",
                "test AUC",
                "LightGBM defaults",
                "oracle AUC",
                "AUC / oracle",
                "ECE",
                "lift@10%",
                "test cutoff",
            ],
            rows,
        )
    )


# keys retain itself writes on training runs: a --tag may not overwrite them
RESERVED_TAGS = (
    "model",
    "label",
    "task",
    "git_sha",
    "source",
    "booster_sha256",
    "artifact_sha256",
    "tuned_trials",
)


def _exists(features_path: Path) -> None:
    """A missing feature file named at once (a second), not after MLflow and the training code
    have loaded (twenty on a busy machine)."""
    from training.dataset import DatasetError, feature_file

    try:
        feature_file(features_path)
    except DatasetError as exc:
        fail(str(exc), 1)


def _run_tags(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"--tag takes KEY=VALUE, not {pair!r}", 2)
        if key in RESERVED_TAGS or key.startswith("mlflow."):
            fail(f"--tag {key} is set by retain itself; pick another key", 2)
        found[key] = value
    return found


def _train_flat(path, target, positive, id_column, drop, register, json_path) -> None:
    from features.sources.flat import FlatTableError, existing

    if not target:
        fail("a flat table needs --target COLUMN", 2)
    try:
        existing(path)  # named at once, before MLflow and the training code load
    except FlatTableError as exc:
        fail(str(exc), 1)
    open_registry()
    from training.dataset import DatasetError
    from training.flat import train_flat

    columns = tuple(c.strip() for c in drop.split(",") if c.strip())
    try:
        with console.status(f"5-fold cross-validation on {path}…"):
            summary = train_flat(path, target, positive, id_column, columns, register, warn=warn)
    except (FlatTableError, DatasetError) as exc:
        fail(str(exc), 1)
    m = summary["metrics"]
    folds = ", ".join(f"{a:.4f}" for a in summary["fold_auc"])
    registered = ", ".join(f"{k} v{v}" for k, v in summary["models"].items()) or "-"
    title = f"{path}: {summary['rows']:,} rows, {len(summary['features'])} features"
    row = (f"{m['cv_auc']:.4f}", f"{m['cv_auc_std']:.4f}", folds, registered)
    console.print(table(title, ["CV AUC", "std", "folds", "registered"], [row]))
    save_json(json_path, summary)


def backtest(
    features_path: Annotated[Path, typer.Option("--features", help="Feature file.")],
    task: Annotated[str, typer.Option(help="churn, upgrade or cross_sell_<product>.")] = "churn",
    config: ConfigOption = None,
    json_path: JsonOption = None,
) -> None:
    """Rolling-origin backtest with the embargo: AUC and ECE per cutoff, trained on the past."""
    from features.targets import from_model

    target = from_model(task)
    if target is None:
        fail(f"--task must be churn, upgrade or cross_sell_<product>, not {task!r}", 2)
    _exists(features_path)
    open_registry()
    from training.backtest import run_backtest
    from training.dataset import DatasetError
    from training.train import TrainConfig

    try:
        with console.status(f"backtesting {task}…"):
            horizon = bank_config(config).churn.horizon_months
            summary = run_backtest(features_path, target.label, TrainConfig(), horizon)
    except DatasetError as exc:
        fail(str(exc), 1)
    rows = [
        (
            r["cutoff"],
            r["valid_cutoff"],
            r["train_cutoffs"],
            f"{r['rows']:,}",
            r["positives"],
            fmt_metric(r["auc"]),
            fmt_metric(r["ece"]),
        )
        for r in summary["cutoffs"]
    ]
    console.print(
        table(
            f"backtest {task} (run {summary['run_id']})",
            ["test cutoff", "validation", "train cutoffs", "rows", "positives", "AUC", "ECE"],
            rows,
        )
    )
    save_json(json_path, summary)
