"""`retain config show` and `retain config check`: the resolved configuration, and whether a
warehouse agrees with it."""

from __future__ import annotations

import json

import typer

from retain.config import config_payload
from retain.options import ConfigOption, WarehouseOption, bank_config, warehouse_location
from retain.output import JsonOption, console, errors, save_json, table

config_app = typer.Typer(help="The configuration (retain.toml).", no_args_is_help=True)


@config_app.command("show")
def show(config: ConfigOption = None, json_path: JsonOption = None) -> None:
    """Print the resolved configuration (defaults filled in)."""
    payload = config_payload(bank_config(config))
    console.print_json(json.dumps(payload, ensure_ascii=False))
    save_json(json_path, payload)


@config_app.command("check")
def check(
    config: ConfigOption = None, warehouse: WarehouseOption = None, json_path: JsonOption = None
) -> None:
    """Check the configuration against a warehouse: its products, tiers and every table."""
    from features.schema import validate_warehouse
    from retain.warehouse import catalogue_problems

    bank = bank_config(config)
    location = warehouse_location(warehouse, bank)
    with console.status("checking…"):
        violations = validate_warehouse(location, bank.warehouse)
        problems = catalogue_problems(location, bank)
    rows = [(v.table, v.column, v.rule, f"{v.count:,}", "; ".join(v.examples)) for v in violations]
    rows += [("configuration", key, problem, "", "") for key, problem in problems]
    found = [{"key": key, "problem": problem} for key, problem in problems]
    save_json(
        json_path,
        {
            "warehouse": location,
            "valid": not rows,
            "configuration": found,
            "violations": [v.__dict__ for v in violations],
        },
    )
    if not rows:
        console.print(f"[green]✓[/] {location} agrees with the configuration")
        return
    columns = ["table", "column / key", "rule", "failing rows", "examples"]
    console.print(table(f"{len(rows)} problem(s) in {location}", columns, rows))
    errors.print("[red]the warehouse does not agree with the configuration[/]")
    raise typer.Exit(1)
