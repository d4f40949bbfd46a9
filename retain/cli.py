"""The `retain` command: a thin front door over features/, training/ and serving/."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from retain.config_commands import config_app
from retain.monitor_commands import monitor
from retain.options import (
    ConfigOption,
    WarehouseOption,
    bank_config,
    synthetic_bank,
    warehouse_location,
)
from retain.outcomes_commands import outcomes_app
from retain.output import JsonOption, console, errors, progress_bar, save_json, table
from retain.run_commands import run as run_command

app = typer.Typer(
    help="retain — churn and cross-sell propensity for a bank's relationship managers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _terminate(signum: int, _frame) -> None:
    # turn a polite kill into SystemExit, so atomic writers and scratch folders clean up
    raise SystemExit(128 + signum)


app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"retain {version('retain')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """retain — churn and cross-sell propensity for a bank's relationship managers."""
    signal.signal(signal.SIGTERM, _terminate)
    # a command's own progress bars and tables are the output; MLflow's download bars are noise
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # OpenMP threads that spin while they wait make LightGBM 10-100x slower on a busy 2-core
    # machine (measured: 30 s instead of 0.3 s a fit); set before LightGBM is first imported
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


DEFAULT_WAREHOUSE = Path("data/warehouse")


def _month_end(value: str) -> date:
    """A month-end date, or a one-line usage error naming what was wrong."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise typer.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}") from exc
    if (day + timedelta(days=1)).day != 1:
        raise typer.BadParameter(f"{value} is not a month-end date (months end on their last day)")
    return day


@app.command()
def synth(
    customers: Annotated[
        int | None, typer.Option(help="Number of customers.", show_default="20000")
    ] = None,
    months: Annotated[
        int | None, typer.Option(help="Months of history.", show_default="24")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last month-end of the window.", show_default="2024-12-31")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed: same seed, same files.", show_default="0")
    ] = None,
    out: Annotated[Path, typer.Option(help="Warehouse directory to write.")] = DEFAULT_WAREHOUSE,
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A retain.toml: its \\[synthetic] section gives the bank (size, ids, products), "
            "its tiers the ladder; options given here win. Default: ./retain.toml if present.",
        ),
    ] = None,
    shift_from: Annotated[
        str | None,
        typer.Option(
            help="Regime change: first month-end it affects (see docs/synthetic_regime.md)."
        ),
    ] = None,
    outflow_factor: Annotated[
        float | None,
        typer.Option(
            help="Regime change: payments to other banks multiplied by this.", show_default="1"
        ),
    ] = None,
    withdraw: Annotated[
        list[str] | None,
        typer.Option(help="Regime change: a product code withdrawn (repeat for more)."),
    ] = None,
    outflow_start_factor: Annotated[
        float | None,
        typer.Option(
            help="Regime change: customers start moving savings to other banks this many times "
            "as often.",
            show_default="1",
        ),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Generate a synthetic bank (warehouse tables plus the `truth` table)."""
    from synthetic.bank import write_bank

    given = {"customers": customers, "months": months, "seed": seed}
    if end is not None:
        given["end"] = _month_end(end)
    regime = {
        "start": shift_from,
        "outflow_factor": outflow_factor,
        "withdrawn": withdraw,
        "outflow_start_factor": outflow_start_factor,
    }
    given["regime"] = {key: value for key, value in regime.items() if value is not None}
    config, bank = synthetic_bank(config_path, given)
    ladder = bank.tiers
    started = time.perf_counter()
    with progress_bar(f"synthetic bank, {config.customers:,} customers") as update:
        meta = write_bank(config, out, ladder=ladder, on_chunk=update)
    seconds = time.perf_counter() - started
    console.print(
        table(
            f"synthetic bank written to {out} in {seconds:.1f}s",
            ["table", "rows"],
            [(name, f"{rows:,}") for name, rows in meta["rows"].items()],
        )
    )
    regime = config.regime.model_dump(mode="json") if config.regime else None
    if regime:
        console.print(
            f"regime change from {regime['start']}: payments to other banks "
            f"×{regime['outflow_factor']:g}, savings moved out ×{regime['outflow_start_factor']:g}"
            f", withdrawn: {', '.join(regime['withdrawn']) or 'none'}"
        )
    save_json(json_path, {**meta, "regime": regime, "out": str(out), "seconds": round(seconds, 2)})


@app.command()
def validate(
    warehouse: WarehouseOption = None, config: ConfigOption = None, json_path: JsonOption = None
) -> None:
    """Check a warehouse against the table contract; list every violation, exit 1 if any."""
    from features.schema import validate_warehouse

    location = warehouse_location(warehouse, bank_config(config))
    with console.status("validating…"):
        violations = validate_warehouse(location)
    save_json(
        json_path,
        {
            "warehouse": location,
            "valid": not violations,
            "violations": [v.__dict__ for v in violations],
        },
    )
    if not violations:
        console.print(f"[green]✓[/] {location}: every table passes every check")
        return
    console.print(
        table(
            f"{len(violations)} violation(s) in {location}",
            ["table", "column", "rule", "failing rows", "examples"],
            [
                (v.table, v.column, v.rule, f"{v.count:,}", "; ".join(v.examples))
                for v in violations
            ],
        )
    )
    raise typer.Exit(1)


@app.command()
def profile(
    warehouse: WarehouseOption = None, config: ConfigOption = None, json_path: JsonOption = None
) -> None:
    """Summarise a warehouse: tiers, AUM concentration, churn, product holdings."""
    from features.profile import profile_bank

    bank = bank_config(config)
    summary = profile_bank(warehouse_location(warehouse, bank), bank).summary()
    _print_profile(summary)
    save_json(json_path, summary)


def _print_profile(summary: dict) -> None:
    total = summary["customers"]
    console.print(
        table(
            f"customers by tier at {summary['as_of']}",
            ["tier", "customers", "share"],
            [(t, f"{n:,}", f"{n / total:.1%}") for t, n in summary["tiers"].items()],
        )
    )
    rows = [
        ("AUM held by the top 20% of customers", f"{summary['top20_aum_share']:.1%}"),
        ("monthly churn among eligible customers", f"{summary['monthly_churn_eligible']:.2%}"),
        (
            "median 3-month AUM change, churners / others",
            f"{summary['median_aum_change_3m']['churners']:+.1%} / "
            f"{summary['median_aum_change_3m']['non_churners']:+.1%}",
        ),
    ]
    if "churn_3m_truth" in summary:
        rows.append(
            (
                "3-month churn: realised / true probability",
                f"{summary['churn_3m_realised']:.2%} / {summary['churn_3m_truth']:.2%}",
            )
        )
    console.print(table("the bank at a glance", ["measure", "value"], rows))
    console.print(
        table(
            "product holding rates",
            ["product", "holders"],
            [(p, f"{r:.1%}") for p, r in summary["holding_rates"].items()],
        )
    )


SparkMemoryOption = Annotated[
    str | None,
    typer.Option(help="Spark heap, e.g. 4g: the driver's in local mode, else each executor's."),
]


@app.command()
def features(
    cutoffs: Annotated[
        str, typer.Option(help="FIRST:LAST month-end dates, e.g. 2024-01-31:2024-09-30.")
    ],
    warehouse: WarehouseOption = None,
    config: ConfigOption = None,
    every: Annotated[int, typer.Option(help="Take every N-th month.")] = 1,
    engine: Annotated[
        str | None, typer.Option(help="duckdb (embedded) or spark (default: configuration).")
    ] = None,
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (default: configuration).")
    ] = None,
    spark_memory: SparkMemoryOption = None,
    out: Annotated[Path, typer.Option(help="Feature file to write.")] = Path(
        "data/features.parquet"
    ),
    json_path: JsonOption = None,
) -> None:
    """Validate the warehouse, then build point-in-time features and labels for monthly
    cutoffs."""
    from features.build import CutoffError, parse_cutoffs
    from features.engine import EngineError
    from features.materialize import write_features
    from features.sources.files import WarehouseError
    from retain.warehouse import require_valid

    bank = bank_config(config)
    location = warehouse_location(warehouse, bank)
    engine = engine or bank.warehouse.engine
    started = time.perf_counter()
    try:
        months = parse_cutoffs(cutoffs, every)
        require_valid(location)
        with console.status("features") as status:
            summary = write_features(
                location,
                months,
                out,
                bank,
                engine,
                spark_master or bank.warehouse.spark_master,
                step=lambda text: status.update(f"features: {text}…"),
                spark_memory=spark_memory or bank.warehouse.spark_memory,
            )
    except (CutoffError, EngineError, WarehouseError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    summary["seconds"] = round(time.perf_counter() - started, 2)
    console.print(
        table(
            f"features written to {out}",
            ["engine", "cutoffs", "rows", "features", "labels", "seconds"],
            [
                (
                    engine,
                    len(months),
                    f"{summary['rows']:,}",
                    summary["features"],
                    len(summary["labels"]),
                    summary["seconds"],
                )
            ],
        )
    )
    save_json(json_path, summary)


@app.command()
def train(
    features_path: Annotated[
        Path | None, typer.Option("--features", help="Feature file from `retain features`.")
    ] = None,
    task: Annotated[str, typer.Option(help="churn, cross_sell, upgrade or all.")] = "all",
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
    json_path: JsonOption = None,
) -> None:
    """Train LightGBM models out of time, log and register them in MLflow (as challenger)."""
    from models.registry import use_store
    from training.dataset import DatasetError
    from training.run import TASKS, train_task
    from training.train import TrainConfig

    if table_path is not None:
        _train_flat(table_path, target, positive, id_column, drop, register, json_path)
        return
    if features_path is None:
        errors.print("[red]error:[/] give --features FILE (or --table FILE for a flat table)")
        raise typer.Exit(2)
    if task not in TASKS:
        errors.print(f"[red]error:[/] --task must be one of {', '.join(TASKS)}, not {task!r}")
        raise typer.Exit(2)
    run_tags = _run_tags(tags or [])
    use_store(experiment=experiment)
    try:
        with progress_bar(f"training {task}: models") as update:
            summary = train_task(
                features_path,
                task,
                TrainConfig(),
                _warn,
                trials,
                update,
                bank=bank_config(config),
                run_name=run_name,
                tags=run_tags,
            )
    except DatasetError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    rows = [
        (
            model,
            summary["models"][model],
            *(
                _fmt(m.get(k))
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
    save_json(json_path, summary)


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


def _run_tags(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.print(f"[red]error:[/] --tag takes KEY=VALUE, not {pair!r}")
            raise typer.Exit(2)
        if key in RESERVED_TAGS or key.startswith("mlflow."):
            errors.print(f"[red]error:[/] --tag {key} is set by retain itself; pick another key")
            raise typer.Exit(2)
        found[key] = value
    return found


def _train_flat(path, target, positive, id_column, drop, register, json_path) -> None:
    from features.sources.flat import FlatTableError
    from training.dataset import DatasetError
    from training.flat import train_flat
    from training.register import use_store

    if not target:
        errors.print("[red]error:[/] a flat table needs --target COLUMN")
        raise typer.Exit(2)
    use_store()
    columns = tuple(c.strip() for c in drop.split(",") if c.strip())
    try:
        with console.status(f"5-fold cross-validation on {path}…"):
            summary = train_flat(path, target, positive, id_column, columns, register, warn=_warn)
    except (FlatTableError, DatasetError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    m = summary["metrics"]
    folds = ", ".join(f"{a:.4f}" for a in summary["fold_auc"])
    registered = ", ".join(f"{k} v{v}" for k, v in summary["models"].items()) or "-"
    title = f"{path}: {summary['rows']:,} rows, {len(summary['features'])} features"
    row = (f"{m['cv_auc']:.4f}", f"{m['cv_auc_std']:.4f}", folds, registered)
    console.print(table(title, ["CV AUC", "std", "folds", "registered"], [row]))
    save_json(json_path, summary)


def _warn(text: str) -> None:
    console.print(f"[yellow]warning:[/] {text}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@app.command()
def backtest(
    features_path: Annotated[Path, typer.Option("--features", help="Feature file.")],
    task: Annotated[str, typer.Option(help="churn, upgrade or cross_sell_<product>.")] = "churn",
    config: ConfigOption = None,
    json_path: JsonOption = None,
) -> None:
    """Rolling-origin backtest with the embargo: AUC and ECE per cutoff, trained on the past."""
    from training.backtest import run_backtest
    from training.dataset import DatasetError
    from training.register import use_store
    from training.train import TrainConfig

    use_store()
    try:
        with console.status(f"backtesting {task}…"):
            horizon = bank_config(config).churn.horizon_months
            summary = run_backtest(features_path, f"label_{task}", TrainConfig(), horizon)
    except DatasetError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    rows = [
        (
            r["cutoff"],
            r["valid_cutoff"],
            r["train_cutoffs"],
            f"{r['rows']:,}",
            r["positives"],
            _fmt(r["auc"]),
            _fmt(r["ece"]),
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


@app.command()
def promote(
    model: Annotated[
        list[str] | None,
        typer.Option(help="Registered model name, e.g. churn (repeat for several)."),
    ] = None,
    all_models: Annotated[
        bool, typer.Option("--all", help="Every registered model (after train --task all).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Promote even if worse.")] = False,
    version: Annotated[
        int | None,
        typer.Option("--version", help="Make this version champion, no gate (rollback)."),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Make the challenger champion if it is no worse on its logged test rows; or, with
    --version N, put version N back as champion (recorded with who and when)."""
    from mlflow.tracking import MlflowClient

    from models.registry import RegistryError, use_store
    from training.promote import promote as promote_model
    from training.promote import rollback

    use_store()
    names = list(model or [])
    if all_models:
        names = sorted(m.name for m in MlflowClient().search_registered_models())
    if not names or (version is not None and len(names) != 1):
        errors.print("[red]error:[/] name one --model (or several, or --all; --version takes one)")
        raise typer.Exit(2)
    decisions, failed = [], False
    for name in names:
        try:
            if version is not None:
                decision = rollback(name, str(version))
            else:
                decision = promote_model(name, force=force)
        except RegistryError as exc:
            errors.print(f"[red]error:[/] {exc}")
            failed = True
            continue
        decisions.append({"model": name, **decision})
        comparison = decision.get("comparison", {})
        console.print(
            table(
                f"{name}: {'promoted' if decision['promoted'] else 'kept'} — {decision['reason']}",
                ["role", "version", "AUC", "ECE"],
                [
                    (role, m["version"], _fmt(m["auc"]), _fmt(m["ece"]))
                    for role, m in comparison.items()
                ],
            )
        )
    if len(names) == 1 and decisions:
        save_json(json_path, decisions[0])
    elif decisions:
        save_json(json_path, {"decisions": decisions})
    if failed:
        raise typer.Exit(1)


@app.command()
def models(
    names: Annotated[bool, typer.Option("--names", help="Only the names, one per line.")] = False,
    json_path: JsonOption = None,
) -> None:
    """List registered models with versions, aliases and key metrics."""
    from models.registry import registered_models, use_store

    use_store()
    rows = registered_models()
    if names:
        for name in sorted({r["name"] for r in rows}):
            print(name)
    else:
        columns = ["name", "version", "aliases", "test AUC", "ECE", "AUC / oracle"]
        lines = [
            (
                r["name"],
                r["version"],
                ", ".join(r["aliases"]),
                _fmt(r["test_auc"]),
                _fmt(r["ece"]),
                _fmt(r["auc_to_oracle"]),
            )
            for r in rows
        ]
        console.print(table("registered models", columns, lines))
    save_json(json_path, {"models": rows})


@app.command()
def runs(
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "retain",
    model: Annotated[str | None, typer.Option(help="Only the runs of this model.")] = None,
    last: Annotated[int, typer.Option(help="How many runs, newest first.", min=1)] = 20,
    json_path: JsonOption = None,
) -> None:
    """List training runs with their key metrics and cutoffs (from the MLflow store)."""
    from models.registry import RegistryError, list_runs, use_store

    use_store()
    try:
        rows = list_runs(experiment, model, last)
    except RegistryError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    columns = [
        "run id",
        "name",
        "start",
        "status",
        "model",
        "test AUC",
        "AUC / oracle",
        "ECE",
        "lift@10%",
        "train cutoffs",
        "valid cutoffs",
        "test cutoffs",
    ]
    lines = [
        (
            r["run_id"],
            r["name"],
            r["start"],
            r["status"],
            r["model"] or "-",
            _fmt(r["test_auc"]),
            _fmt(r["auc_to_oracle"]),
            _fmt(r["ece"]),
            _fmt(r["lift_at_10"]),
            *(r[f"{part}_cutoffs"] or "-" for part in ("train", "valid", "test")),
        )
        for r in rows
    ]
    console.print(table(f"runs of {experiment}" + (f" ({model})" if model else ""), columns, lines))
    save_json(json_path, {"experiment": experiment, "runs": rows})


@app.command()
def score(
    cutoff: Annotated[str, typer.Option(help="Month-end date to score at, e.g. 2024-12-31.")],
    warehouse: WarehouseOption = None,
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output directory (replaced atomically).")] = Path(
        "data/scores"
    ),
    lang: Annotated[
        str | None, typer.Option(help="Language of reasons and sheets: zh or en.")
    ] = None,
    k: Annotated[
        int | None, typer.Option(help="List length (default: each RM's capacity).")
    ] = None,
    explain_above: Annotated[
        float | None, typer.Option(help="Only explain customers with p_churn at least this.")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="duckdb, or spark: features, scores and reasons in Spark."),
    ] = None,
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (default: configuration).")
    ] = None,
    spark_memory: SparkMemoryOption = None,
    json_path: JsonOption = None,
) -> None:
    """Validate the warehouse, score every customer with the champion models, and write
    scores, RM lists and a report."""
    from retain.warehouse import require_valid

    bank = bank_config(config)
    location = warehouse_location(warehouse, bank)
    day = _month_end(cutoff)
    require_valid(location)
    spark = {
        "engine": engine or bank.warehouse.engine,
        "spark_master": spark_master or bank.warehouse.spark_master,
        "spark_memory": spark_memory or bank.warehouse.spark_memory,
    }
    summary = _score(location, day, out, bank, lang, k, explain_above, **spark)
    _print_score(summary)
    save_json(json_path, summary)


def _score(warehouse, cutoff: date, out: Path, bank, lang, k, explain_above, **spark) -> dict:
    from features.build import CutoffError
    from features.engine import ENGINES, EngineError
    from features.sources.files import WarehouseError
    from models.registry import RegistryError, use_store
    from serving.batch import score_warehouse

    lang = lang or bank.language
    if lang not in bank.languages:
        errors.print(
            f"[red]error:[/] --lang must be one of {', '.join(bank.languages)}, not {lang!r}"
        )
        raise typer.Exit(2)
    explain_above = bank.lists.explain_above if explain_above is None else explain_above
    if spark.get("engine", "duckdb") not in ENGINES:
        errors.print(f"[red]error:[/] --engine must be one of {', '.join(ENGINES)}")
        raise typer.Exit(2)
    use_store()
    try:
        with console.status("scoring") as status:
            return score_warehouse(
                warehouse,
                cutoff,
                out,
                bank,
                lang,
                k,
                explain_above,
                step=lambda text: status.update(f"scoring: {text}…"),
                **spark,
            )
    except (RegistryError, CutoffError, WarehouseError, EngineError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        errors.print(f"nothing written: the previous contents of {out} are untouched")
        raise typer.Exit(1) from exc


def _print_score(summary: dict) -> None:
    rows = [
        ("cutoff", summary["cutoff"]),
        ("customers scored", f"{summary['customers_scored']:,}"),
        ("customers explained", f"{summary['customers_explained']:,}"),
        ("lists", f"{summary['lists']:,} ({summary['listed_customers']:,} customers)"),
        ("models", ", ".join(f"{n} v{v}" for n, v in summary["models"].items())),
        ("seconds", f"{summary['seconds']:.1f}"),
    ]
    if summary.get("reason_fidelity") is not None:
        fidelity = f"{summary['reason_fidelity']:.3f} of {summary['fidelity_churners']} churners"
        rows.append(("reason fidelity (truth)", fidelity))
    console.print(table(f"scores, lists and report in {summary['out']}", ["", ""], rows))


keys_app = typer.Typer(help="API keys of the scoring service (hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(outcomes_app, name="outcomes")
app.command()(monitor)
app.command("run")(run_command)
DEFAULT_KEYS = Path("data/keys.json")
KeysOption = Annotated[Path, typer.Option("--keys", help="Keys file.")]


@keys_app.command("add")
def keys_add(
    role: Annotated[str, typer.Option(help="crm, rm or admin.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    rm_id: Annotated[str | None, typer.Option(help="For an rm key: whose book.")] = None,
    keys: KeysOption = DEFAULT_KEYS,
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""
    from serving.api.auth import KeyError_, add_key

    try:
        record, plain = add_key(keys, name, role, rm_id)
    except KeyError_ as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(
        f"key [bold]{record.name}[/] ({record.role}"
        f"{', rm ' + record.rm_id if record.rm_id else ''}) added to {keys}; "
        "it is shown once, below:"
    )
    print(plain)


@keys_app.command("list")
def keys_list(keys: KeysOption = DEFAULT_KEYS, json_path: JsonOption = None) -> None:
    """List keys (name, role, RM, prefix, created, revoked) — never the keys themselves."""
    from dataclasses import asdict

    from serving.api.auth import KeyError_, load_keys

    try:
        records = load_keys(keys)
    except KeyError_ as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    rows = [
        (
            k.name,
            k.role,
            k.rm_id or "",
            k.prefix + "…",
            k.created,
            "revoked" if k.revoked else "live",
        )
        for k in records
    ]
    console.print(
        table(f"API keys in {keys}", ["name", "role", "rm", "key", "created", "state"], rows)
    )
    save_json(
        json_path,
        {"keys": [{k: v for k, v in asdict(r).items() if k != "sha256"} for r in records]},
    )


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Option(help="Name of the key to revoke.")],
    keys: KeysOption = DEFAULT_KEYS,
) -> None:
    """Revoke a key; a running service stops accepting it at once."""
    from serving.api.auth import KeyError_, revoke_key

    try:
        revoke_key(keys, name)
    except KeyError_ as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"key {name} revoked")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface (0.0.0.0 for all).")] = "127.0.0.1",
    scores: Annotated[
        Path | None, typer.Option(help="A `retain score` output directory for id lookups.")
    ] = Path("data/scores"),
    keys: KeysOption = DEFAULT_KEYS,
    audit: Annotated[Path | None, typer.Option(help="Audit log (JSON lines).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    config: ConfigOption = None,
    outcomes: Annotated[
        str | None,
        typer.Option(
            help="Outcome store: a SQLite file or a postgres:// URL.",
            show_default="data/outcomes.db",
        ),
    ] = None,
) -> None:
    """Run the scoring API (BentoML) with the champion models from the registry.

    Past its admission limits (environment: RETAIN_MAX_IN_FLIGHT, RETAIN_MAX_QUEUE,
    RETAIN_QUEUE_MS, RETAIN_RETRY_AFTER; docs/api.md, "Overload") a worker answers 503 at once."""
    import shutil

    from models.registry import tracking_uri
    from serving.api.shedding import Limits

    try:
        Limits.from_env()  # the workers read them; a bad one is named here, not in a traceback
    except ValueError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "RETAIN_BANK_CONFIG": bank_config(config).model_dump_json(),
        "RETAIN_KEYS": str(keys.resolve()),
        "RETAIN_WORKERS": str(workers),
        "RETAIN_AUDIT_LOG": str((audit or keys.parent / "audit.log").resolve()),
    }
    if outcomes is not None:
        is_url = outcomes.startswith(("postgres://", "postgresql://"))
        env["RETAIN_OUTCOMES"] = outcomes if is_url else str(Path(outcomes).resolve())
    if scores is not None and scores.exists():
        env["RETAIN_SCORES"] = str(scores.resolve())
    else:
        env.pop("RETAIN_SCORES", None)
        errors.print(
            f"[yellow]note:[/] no scored snapshot at {scores}: id lookups and lists "
            "are off until you run `retain score`"
        )
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    args = [
        bentoml,
        "serve",
        "serving.api.service:Retain",
        "--port",
        str(port),
        "--host",
        host,
        "--working-dir",
        str(root),
    ]
    console.print(f"serving on http://{host}:{port} (spec at /docs, readiness at /readyz)")
    os.execve(bentoml, args, env)


@app.command()
def demo(
    customers: Annotated[
        int | None, typer.Option(help="Customers in the synthetic bank.", show_default="20000")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", show_default="0")] = None,
    out: Annotated[Path, typer.Option(help="Where the demo writes.")] = Path("data"),
    lang: Annotated[str, typer.Option(help="Language of reasons and sheets: zh or en.")] = "en",
    config: ConfigOption = None,
    json_path: JsonOption = None,
) -> None:
    """Run the whole chain on a fresh synthetic bank: warehouse → features → models → lists.

    Writes ``<out>/warehouse``, ``<out>/features.parquet`` and ``<out>/scores`` (lists and
    report); models go to the MLflow store and every new one is promoted if no worse. With
    ``--config`` the bank is the configuration's (its ``[synthetic]`` section and tiers)."""
    from features.build import parse_cutoffs
    from features.materialize import write_features
    from models.registry import RegistryError, use_store
    from synthetic.bank import write_bank
    from training.promote import promote as promote_model
    from training.run import train_task
    from training.train import TrainConfig

    synth, bank = synthetic_bank(config, {"customers": customers, "seed": seed})
    warehouse, features_path = out / "warehouse", out / "features.parquet"
    last = synth.end
    started = time.perf_counter()
    title = f"1/5 synthetic bank, {synth.customers:,} customers × {synth.months} months"
    with progress_bar(title) as update:
        write_bank(synth, warehouse, ladder=bank.tiers, on_chunk=update)
    # every month with 3 months of history before it: the last `horizon` have no complete
    # labels yet, the ones before train, validate and test the models
    cutoffs = parse_cutoffs(f"{_months_before(last, synth.months - 4)}:{last.isoformat()}")
    with console.status("2/5 features") as status:
        write_features(
            warehouse,
            cutoffs,
            features_path,
            bank,
            step=lambda text: status.update(f"2/5 features: {text}…"),
        )
    use_store()
    with progress_bar("3/5 training churn, cross-sell and upgrade models") as update:
        trained = train_task(features_path, "all", TrainConfig(), _warn, 0, update, bank=bank)
    decisions = []
    try:
        for name in trained["models"]:
            decisions.append(promote_model(name))
    except RegistryError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        table(
            "4/5 models (promoted to champion when no worse)",
            [
                "model",
                "version",
                "champion",
                "test AUC",
                "LightGBM defaults",
                "AUC / oracle",
                "ECE",
            ],
            [
                (
                    d["model"],
                    d["challenger"],
                    d["champion"],
                    *(
                        _fmt(trained["per_model"][d["model"]].get(k))
                        for k in ("test_auc", "lightgbm_defaults_test_auc", "auc_to_oracle", "ece")
                    ),
                )
                for d in decisions
            ],
        )
    )
    console.print("5/5 scoring the latest month")
    scored = _score(warehouse, last, out / "scores", bank, lang, None, None)
    _print_score(scored)
    seconds = time.perf_counter() - started
    console.print(
        f"lists in [bold]{out / 'scores' / 'lists'}[/], report "
        f"[bold]{out / 'scores' / 'report.html'}[/] ({seconds:.0f}s in all)"
    )
    save_json(
        json_path,
        {
            "warehouse": str(warehouse),
            "features": str(features_path),
            "training": trained,
            "promotions": decisions,
            "scoring": scored,
            "seconds": round(seconds, 1),
        },
    )


def _months_before(month_end: date, months: int) -> str:
    import pandas as pd

    return (pd.Timestamp(month_end) - pd.offsets.MonthEnd(months)).date().isoformat()


if __name__ == "__main__":
    app()
