"""What the commands do with a warehouse before they use it: validate it, and check that it
agrees with the configuration. A bad warehouse stops a command with the violations table,
never a traceback."""

from __future__ import annotations

import typer

from features.config import BankConfig, WarehouseConfig
from retain.output import console, errors, table


def catalogue_problems(location: str, bank: BankConfig) -> list[tuple[str, str]]:
    """(key, problem) for configuration entries the warehouse contradicts."""
    from features.products import open_products

    try:
        codes = {p.product for p in open_products(location)}
    except Exception as exc:  # an unreadable products table is reported by the validation
        return [("products", f"could not read the products table: {type(exc).__name__}")]
    return [
        (f"product_labels.{code}", "names a product the products table does not have")
        for code in sorted(set(bank.product_labels) - codes)
    ]


def require_valid(
    location: str,
    settings: WarehouseConfig = WarehouseConfig(),  # noqa: B008 - frozen, one shared default
) -> None:
    """Validate the warehouse on the engine ``settings`` name (the one the command then builds
    on); on any violation print them all and exit 1."""
    from features.schema import validate_warehouse

    with console.status(f"validating {location}…"):
        violations = validate_warehouse(location, settings)
    if not violations:
        return
    rows = [(v.table, v.column, v.rule, f"{v.count:,}", "; ".join(v.examples)) for v in violations]
    errors.print(
        table(
            f"{len(violations)} violation(s) in {location}: fix them (retain validate) first",
            ["table", "column", "rule", "failing rows", "examples"],
            rows,
        )
    )
    raise typer.Exit(1)
