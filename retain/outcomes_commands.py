"""`retain outcomes export`: recorded outcomes into the warehouse as `interactions` rows, so the
next feature build and monitoring see them (docs/design.md §12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retain.options import ConfigOption, bank_config
from retain.output import JsonOption, console, fail, save_json

outcomes_app = typer.Typer(help="Outcomes RMs recorded (API and page).", no_args_is_help=True)


@outcomes_app.command("export")
def export(
    warehouse: Annotated[
        Path, typer.Option(help="Warehouse directory; a new part goes to interactions/.")
    ],
    store: Annotated[
        str | None,
        typer.Option(help="Outcome store: a SQLite file or a postgres:// URL (service.outcomes)."),
    ] = None,
    scores: Annotated[
        list[Path] | None,
        typer.Option(
            help="A `retain score` output whose randomised assignments go to "
            "list_assignments/ too (the uplift model's history); repeatable."
        ),
    ] = None,
    config: ConfigOption = None,
    json_path: JsonOption = None,
) -> None:
    """Append the outcomes not exported yet as interactions/part-outcomes-<time>.parquet, and
    the randomised assignments of the months given with --scores as list_assignments parts.

    Each outcome and each month is exported once: a second run adds nothing new."""
    from serving.outcomes import OutcomeError, OutcomeStore, export_to_warehouse

    store = store or bank_config(config).service.outcomes
    is_url = store.startswith(("postgres://", "postgresql://"))
    if not is_url and not Path(store).exists():
        fail(f"no outcome store at {store} (retain serve --outcomes)", 2)
    try:
        part, count = export_to_warehouse(OutcomeStore(store), warehouse)
    except OutcomeError as exc:
        fail(str(exc), 2)
    if part is None:
        console.print("no new outcomes to export")
    else:
        console.print(f"{count:,} outcome(s) appended to {part}")
    parts = [_export_assignments(folder, warehouse) for folder in scores or []]
    save_json(
        json_path,
        {"part": str(part) if part else None, "exported": count, "assignments": parts},
    )


def _export_assignments(scores: Path, warehouse: Path) -> dict:
    from serving.history import HistoryError, export_assignments

    try:
        part, rows = export_assignments(scores, warehouse)
    except HistoryError as exc:
        fail(str(exc), 2)
    if part is None:
        console.print(f"{scores}: no new randomised assignments (month already there, or none)")
    else:
        console.print(f"{rows:,} randomised assignment(s) of {scores} appended to {part}")
    return {"scores": str(scores), "part": str(part) if part else None, "rows": rows}
