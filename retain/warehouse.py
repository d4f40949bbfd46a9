"""What the commands do with a warehouse before they use it: check in seconds what would stop
them late, validate it, and check that it agrees with the configuration. A bad warehouse stops
a command with the violations table, never a traceback."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import typer

from features.config import BankConfig, WarehouseConfig
from retain.output import console, error_line, errors, fail, table

if TYPE_CHECKING:
    from serving.champions import ModelSet


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


def scoring_problem(
    location: str, cutoff: date, bank: BankConfig
) -> tuple[ModelSet | None, str | None]:
    """What would stop a scoring at ``cutoff`` only after the validation and the features (on
    10M customers, minutes of both), found in seconds: a champion model that is missing or
    fails its checks (``load_champions``: registered, SHA-256 of the booster and of the rest),
    or a cutoff the warehouse holds no balances for. The champions as loaded
    (for the scoring to use) and the one line to show, or None.

    The cutoff is checked where the warehouse is computed without starting anything: DuckDB
    over files, or the database itself. On Spark the features step checks it (starting the
    cluster session is that step's, with its own errors); any other error here is left to the
    validation, which reports it with the table and column."""
    from features.build import CutoffError, check_cutoffs
    from features.engine import open_warehouse
    from models.registry import RegistryError, use_store
    from serving.champions import load_champions

    try:
        use_store()  # the store the scoring will use, from here on
        models = load_champions(ranking=bank.lists.ranking)
    except RegistryError as exc:
        return None, str(exc)
    except Exception as exc:  # a registry that does not answer stops the scoring as surely
        return None, f"could not read the champion models from the registry: {error_line(exc)}"
    if bank.warehouse.engine == "duckdb":
        try:
            _, warehouse = open_warehouse(location, bank.warehouse)
            check_cutoffs(warehouse, [cutoff])
        except CutoffError as exc:
            return models, str(exc)
        except Exception:  # an unreadable table is the validation's to report, with its column
            pass
    return models, None


def require_scorable(location: str, cutoff: date, bank: BankConfig) -> ModelSet:
    """The champions the scoring needs, or exit 1 with :func:`scoring_problem`'s
    line, before anything is validated or written."""
    models, problem = scoring_problem(location, cutoff, bank)
    if problem is not None:
        fail(problem, 1, "nothing was run: found before validating the warehouse")
    return models
