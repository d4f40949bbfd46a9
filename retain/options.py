"""Options every command shares: the configuration file and the warehouse location."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from features.config import BankConfig
from retain.config import ConfigError, load_config
from retain.output import errors

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


def bank_config(path: Path | None) -> BankConfig:
    """The configuration, or a one-line error and exit code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def warehouse_location(option: str | None, config: BankConfig) -> str:
    """The warehouse to read: the option, else the configuration's; a missing directory is a
    one-line error."""
    location = option or config.warehouse.location
    if "://" not in location and not Path(location).is_dir():
        errors.print(f"[red]error:[/] warehouse directory {location} does not exist")
        raise typer.Exit(2)
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
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
