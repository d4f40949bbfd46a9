"""`retain score`: every customer scored with the champion models, and the scores, RM lists and
report written; `score_month` and `print_score` are also the demo's last step."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from features.config import BankConfig
from retain.options import (
    ConfigOption,
    SparkMasterOption,
    SparkMemoryOption,
    WarehouseOption,
    bank_config,
    engine_options,
    month_end,
    open_registry,
    warehouse_location,
    with_options,
)
from retain.output import JsonOption, console, fail, save_json, table

if TYPE_CHECKING:
    from serving.champions import ModelSet


def score(
    cutoff: Annotated[str, typer.Option(help="Month-end date to score at, e.g. 2024-12-31.")],
    warehouse: WarehouseOption = None,
    config: ConfigOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output directory, replaced atomically (default: service.scores, what "
            "`retain serve` serves)."
        ),
    ] = None,
    lang: Annotated[
        str | None, typer.Option(help="Language of reasons and sheets: zh or en.")
    ] = None,
    k: Annotated[
        int | None, typer.Option(help="List length (default: each RM's capacity).", min=1)
    ] = None,
    explain_above: Annotated[
        float | None, typer.Option(help="Only explain customers with p_churn at least this.")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="duckdb, or spark: features, scores and reasons in Spark."),
    ] = None,
    spark_master: SparkMasterOption = None,
    spark_memory: SparkMemoryOption = None,
    json_path: JsonOption = None,
) -> None:
    """Validate the warehouse, score every customer with the champion models, and write
    scores, RM lists and a report."""
    from retain.warehouse import require_scorable, require_valid

    bank = with_options(
        bank_config(config),
        warehouse=engine_options(engine, spark_master, spark_memory),
        lists={"explain_above": explain_above},
        language=lang,
    )
    location = warehouse_location(warehouse, bank)
    day = month_end(cutoff)
    if out is None and bank.service.scores is None:
        fail("give --out DIR (the configuration's service.scores is empty)", 2)
    models = require_scorable(location, day, bank)
    require_valid(location, bank.warehouse)
    summary = score_month(location, day, out or Path(bank.service.scores), bank, k, models)
    print_score(summary)
    save_json(json_path, summary)


def score_month(
    warehouse: str,
    cutoff: date,
    out: Path,
    bank: BankConfig,
    k: int | None,
    models: ModelSet | None = None,
) -> dict:
    """Score ``warehouse`` at ``cutoff`` into ``out`` (replaced atomically) with the resolved
    configuration ``bank`` (its language, engine and list policy) and the champions ``models``
    when they are loaded already; a failure is a one-line error, and ``out`` keeps its previous
    contents."""
    from features.build import CutoffError
    from features.engine import EngineError
    from features.sources.files import WarehouseError
    from models.registry import RegistryError
    from serving.batch import score_warehouse

    open_registry()
    try:
        with console.status("scoring") as status:
            return score_warehouse(
                warehouse,
                cutoff,
                out,
                bank,
                bank.language,
                k,
                models=models,
                step=lambda text: status.update(f"scoring: {text}…"),
            )
    except (RegistryError, CutoffError, WarehouseError, EngineError) as exc:
        fail(str(exc), 1, f"nothing written: the previous contents of {out} are untouched")


def print_score(summary: dict) -> None:
    """The table of what a scoring wrote."""
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
    written = table(f"scores, lists and report in {summary['out']}", ["", ""], rows)
    written.show_header = False  # a two-column list of facts: a header row would be empty
    console.print(written)
