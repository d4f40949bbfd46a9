"""`retain promote`, `models` and `runs`: the model registry — a challenger promoted (or a
version put back), the registered models and the training runs listed."""

from __future__ import annotations

from typing import Annotated

import typer

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

    from models.registry import RegistryError, use_store
    from training.promote import promote as promote_model
    from training.promote import rollback

    use_store()
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
        comparison = decision.get("comparison", {})
        console.print(
            table(
                f"{name}: {'promoted' if decision['promoted'] else 'kept'} — {decision['reason']}",
                ["role", "version", "AUC", "ECE"],
                [
                    (role, m["version"], fmt_metric(m["auc"]), fmt_metric(m["ece"]))
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
    last: Annotated[int, typer.Option(help="How many runs, newest first.", min=1)] = 20,
    json_path: JsonOption = None,
) -> None:
    """List training runs with their key metrics and cutoffs (from the MLflow store)."""
    from models.registry import RegistryError, list_runs, use_store

    use_store()
    try:
        rows = list_runs(experiment, model, last)
    except RegistryError as exc:
        fail(str(exc), 1)
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
            fmt_metric(r["test_auc"]),
            fmt_metric(r["auc_to_oracle"]),
            fmt_metric(r["ece"]),
            fmt_metric(r["lift_at_10"]),
            *(r[f"{part}_cutoffs"] or "-" for part in ("train", "valid", "test")),
        )
        for r in rows
    ]
    console.print(table(f"runs of {experiment}" + (f" ({model})" if model else ""), columns, lines))
    save_json(json_path, {"experiment": experiment, "runs": rows})
