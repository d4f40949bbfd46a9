"""`retain promote`, `models` and `runs`: the model registry — a challenger promoted (or a
version put back), the registered models and the training runs listed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from retain.options import open_registry
from retain.output import JsonOption, console, fail, fmt_metric, print_error, save_json, table


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

    from models.registry import RegistryError
    from training.promote import promote as promote_model
    from training.promote import rollback

    open_registry()
    names = list(model or [])
    if all_models:
        names = sorted(m.name for m in MlflowClient().search_registered_models())
    if not names or (version is not None and len(names) != 1):
        fail("name one --model (or several, or --all; --version takes one)", 2)
    decisions, failed = [], False
    for name in names:
        try:
            if version is not None:
                decision = rollback(name, str(version))
            else:
                decision = promote_model(name, force=force)
        except RegistryError as exc:
            print_error(str(exc))
            failed = True
            continue
        decisions.append({"model": name, **decision})
        print_decision(name, decision, rollback=version is not None)
    if len(names) == 1 and decisions:
        save_json(json_path, decisions[0])
    elif decisions:
        save_json(json_path, {"decisions": decisions})
    if failed:
        raise typer.Exit(1)


def print_decision(name: str, decision: dict, rollback: bool) -> None:
    """What promote did, in a line; both models' figures side by side and, in words, how the
    one now champion (or the challenger kept out) compares on each."""
    from training.compare import metric_label

    done = "set" if rollback else ("promoted" if decision["promoted"] else "kept")
    console.print(f"[bold]{name}[/]: {done} — {decision['reason']}")
    comparison = decision.get("comparison")
    if not comparison:
        if decision.get("comparison_note"):
            console.print(decision["comparison_note"])
        return
    (role, mine), (other, theirs) = comparison.items()
    verdicts = decision.get("verdicts", {})
    rows = [
        (
            metric_label(metric, short=True),
            fmt_metric(mine.get(metric)),
            fmt_metric(theirs.get(metric)),
            _change(mine.get(metric), theirs.get(metric)),
            verdicts.get(metric, "-"),
        )
        for metric in mine
        if metric != "version"
    ]
    rows_of = decision.get("rows_of") or mine["version"]
    where = f"on the {decision['rows']:,} test rows of version {rows_of}"
    console.print(
        table(
            f"{role} v{mine['version']} and {other} v{theirs['version']} {where}",
            [
                "metric",
                f"{role} v{mine['version']}",
                f"{other} v{theirs['version']}",
                "change",
                f"{role} is",
            ],
            rows,
        )
    )
    console.print(f"{decision['in_words'][:1].upper()}{decision['in_words'][1:]}.")


def _change(value: float | None, other: float | None) -> str:
    return "-" if value is None or other is None else f"{value - other:+.4f}"


def models(
    names: Annotated[bool, typer.Option("--names", help="Only the names, one per line.")] = False,
    json_path: JsonOption = None,
) -> None:
    """List registered models with versions, aliases and key metrics."""
    from models.registry import registered_models

    open_registry()
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
                fmt_metric(r["test_auc"]),
                fmt_metric(r["ece"]),
                fmt_metric(r["auc_to_oracle"]),
            )
            for r in rows
        ]
        console.print(table("registered models", columns, lines))
    save_json(json_path, {"models": rows})


def runs(
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "retain",
    model: Annotated[str | None, typer.Option(help="Only the runs of this model.")] = None,
    last: Annotated[
        int,
        typer.Option(help="How many runs, newest first (a run's nested runs come with it).", min=1),
    ] = 20,
    json_path: JsonOption = None,
) -> None:
    """List training runs with their key metrics and cutoffs (from the MLflow store); a
    training run's models are listed under it. Ids and cutoffs are shortened: --json has
    them whole."""
    from models.registry import RegistryError, list_runs

    open_registry()
    try:
        rows = list_runs(experiment, model, last)
    except RegistryError as exc:
        fail(str(exc), 1)
    title = f"runs of {experiment}" + (f" ({model})" if model else "")
    console.print(runs_table(title, rows, nested=model is None))
    save_json(json_path, {"experiment": experiment, "runs": rows})


SHORT_ID = 8  # characters of a run id in the table (MLflow's UI shows as many)


RUN_COLUMNS = ("run", "name", "start", "test AUC", "AUC/oracle", "ECE", "lift@10")
CUTOFF_COLUMNS = ("train cutoffs", "valid", "test")


def runs_table(title: str, rows: list[dict], nested: bool) -> Table:
    """One line per run at a terminal's width: short ids, cutoffs as month ranges, a parent
    run's models indented under it, no column borders."""
    out = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in (*RUN_COLUMNS, *CUTOFF_COLUMNS):
        numeric = column in RUN_COLUMNS[3:]
        out.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for r in rows:
        out.add_row(
            r["run_id"][:SHORT_ID],
            _name_cell(r, nested),
            r["start"][:16].replace("T", " "),
            *(fmt_metric(r[k]) for k in ("test_auc", "auc_to_oracle", "ece")),
            "-" if r["lift_at_10"] is None else f"{r['lift_at_10']:.2f}",
            *(cutoff_range(r[f"{part}_cutoffs"]) for part in ("train", "valid", "test")),
        )
    return out


def _name_cell(row: dict, nested: bool) -> str:
    """The run's name (a nested run's indented under its parent), its status unless finished,
    and for a parent whose figures are its nested runs' mean, how many."""
    text = row["name"] or row["model"] or "-"
    if nested and row["parent_run_id"]:
        text = f"  {text}"
    if (row.get("metrics_from") or "").startswith("mean"):
        text += f" (mean of {row['nested_runs']})"
    if row["status"] != "FINISHED":
        text += f" [{row['status'].lower()}]"
    return text


def cutoff_range(cutoffs: str | None) -> str:
    """Comma-joined month-end dates as months: ``2024-06`` for one, ``2023-07..2024-03 (9)``
    for several; ``-`` for none."""
    if not cutoffs:
        return "-"
    months = sorted({c.strip()[:7] for c in cutoffs.split(",") if c.strip()})
    if len(months) == 1:
        return months[0]
    return f"{months[0]}..{months[-1]} ({len(months)})"
