"""Options every command shares: the configuration file, the warehouse location, the Spark heap,
and month-end dates."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from features.config import BankConfig, config_problems
from retain.config import ConfigError, load_config
from retain.output import fail

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Configuration file (retain.toml); default ./retain.toml if present."
    ),
]
WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="Warehouse: a directory of parquet files or postgres://user@host/db "
        "(default: the configuration's warehouse.location).",
    ),
]
EngineOption = Annotated[
    str | None,
    typer.Option(
        help="duckdb (embedded) or spark (default: the configuration's warehouse.engine)."
    ),
]
SparkMasterOption = Annotated[
    str | None, typer.Option(help="Spark master URL (default: configuration).")
]
SparkMemoryOption = Annotated[
    str | None,
    typer.Option(help="Spark heap, e.g. 4g: the driver's in local mode, else each executor's."),
]
PlotsOption = Annotated[
    bool,
    typer.Option(
        help="Log each model's ROC, gains, calibration, importance and SHAP plots (on a small "
        "bank nearly half the training time)."
    ),
]


def month_end(value: str) -> date:
    """A month-end date, or a one-line usage error naming what was wrong."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise typer.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}") from exc
    if (day + timedelta(days=1)).day != 1:
        raise typer.BadParameter(f"{value} is not a month-end date (months end on their last day)")
    return day


def bank_config(path: Path | None) -> BankConfig:
    """The configuration, or a one-line error and exit code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc), 2)


def with_options(bank: BankConfig, **sections) -> BankConfig:
    """The configuration with a command's options applied — resolved once here, then passed
    down whole (``with_options(bank, warehouse={"engine": engine})``; None: not given). A bad
    value is a one-line error naming the key, exit code 2."""
    try:
        return bank.with_overrides(**sections)
    except ValidationError as exc:
        fail("; ".join(config_problems(exc)), 2)


def engine_options(engine, spark_master, spark_memory) -> dict:
    """The warehouse section a command's --engine, --spark-master, --spark-memory set."""
    return {"engine": engine, "spark_master": spark_master, "spark_memory": spark_memory}


def open_registry(experiment: str | None = None) -> None:
    """The MLflow store the command works with (``models.registry.use_store``), or exit 1
    with one line when it cannot be reached."""
    from models.registry import EXPERIMENT, RegistryError, use_store

    try:
        use_store(experiment=experiment or EXPERIMENT)
    except RegistryError as exc:
        fail(str(exc), 1, "nothing was run")


def warehouse_location(option: str | None, config: BankConfig) -> str:
    """The warehouse to read: the option, else the configuration's; a missing directory is a
    one-line error."""
    location = option or config.warehouse.location
    if "://" not in location and not Path(location).is_dir():
        fail(f"warehouse directory {location} does not exist", 2)
    return location


def synthetic_bank(path: Path | None, overrides: dict):
    """(SynthConfig, BankConfig) from a retain.toml's ``[synthetic]`` section and its bank
    definitions; ``overrides`` (options given on the command line) win. Errors exit 2."""
    import tomllib

    from retain.config import DEFAULT_CONFIG
    from synthetic.config import synth_config_from_toml

    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    bank = bank_config(path)
    try:
        payload = tomllib.loads(Path(path).read_text(encoding="utf-8")) if path else {}
        given = {k: v for k, v in overrides.items() if v is not None}
        return synth_config_from_toml(payload, overrides=given), bank
    except ValueError as exc:
        fail(str(exc), 2)
