"""`retain monitor`: a scored month against a reference — drift, estimated and realised
performance, the control group (docs/design.md §13). Exit code 2 on an act-level alert, so a
scheduler can page someone; 1 on unusable input; 0 otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retain.options import ConfigOption, WarehouseOption
from retain.output import JsonOption, console, fail, save_json, table

ACT_EXIT = 2
RunsOption = Annotated[
    Path, typer.Option("--runs-dir", help="Where `retain run` keeps each cutoff's outputs.")
]


def monitor(
    reference: Annotated[
        str,
        typer.Option(
            help="The reference: an MLflow run id (a model's training run), a month-end date "
            "(its scores in --runs-dir) or a scores directory."
        ),
    ],
    current: Annotated[
        str, typer.Option(help="The month to check: a month-end date or a scores directory.")
    ],
    runs_dir: RunsOption = Path("data/runs"),
    warehouse: WarehouseOption = None,
    config: ConfigOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where monitor.json and monitor.html go (default: next to the scores)."),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Compare a scored month with a reference: PSI of every feature and score (overall, by tier
    and branch), estimated AUC before labels, realised AUC/ECE/lift once they mature, listed
    against control; a table, an HTML report and an MLflow run."""
    from features.build import CutoffError
    from features.engine import EngineError
    from features.sources.files import WarehouseError
    from models.registry import RegistryError
    from monitoring.job import MonitorError, resolve_scores_dir, run_monitor
    from retain.config import ConfigError, load_config

    try:
        bank = load_config(config)
        current_dir = resolve_scores_dir(current, runs_dir)
        location = warehouse or bank.warehouse.location
        if "://" not in location and not Path(location).is_dir():
            if warehouse is not None:
                raise MonitorError(f"warehouse directory {location} does not exist")
            location = None  # no warehouse: drift and estimates only
        target = out or (current_dir.parent / "monitor")
        with console.status("monitoring") as status:
            summary = run_monitor(
                current=current_dir,
                reference=reference,
                runs_dir=runs_dir,
                warehouse=location,
                config=bank,
                out=target,
                step=lambda text: status.update(f"monitoring: {text}…"),
            )
    except (
        ConfigError,
        MonitorError,
        RegistryError,
        CutoffError,
        WarehouseError,
        EngineError,
    ) as exc:
        fail(str(exc), 1)
    _print(summary)
    save_json(json_path, summary)
    if summary["alert"] == "act":
        raise typer.Exit(ACT_EXIT)


def _f(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _print(summary: dict) -> None:
    colour = {"ok": "green", "watch": "yellow", "act": "red"}[summary["alert"]]
    ref, cur = summary["reference"], summary["current"]
    console.print(
        f"[bold]{cur['cutoff'] or cur['source']}[/] ({cur['rows']:,} rows) against "
        f"{ref['cutoff'] or ''} {ref['source']} ({ref['rows']:,} rows): "
        f"[bold {colour}]{summary['alert']}[/]"
    )
    alerts = summary["alerts"]
    if alerts:
        rows = [
            (a["band"], a["what"], a["segment"], _f(a.get("psi")), _f(a.get("value")))
            for a in alerts[:30]
        ]
        title = f"{len(alerts)} alert(s)" + (" (first 30)" if len(alerts) > 30 else "")
        console.print(table(title, ["band", "what", "segment", "PSI", "value"], rows))
    else:
        console.print("no alerts")
    est, test = summary.get("estimate") or {}, summary.get("test_figures") or {}
    if est:
        rows = [
            (
                "AUC",
                f"{_f(est.get('estimated_auc'))} ({_f(est.get('estimated_auc_low'))}–"
                f"{_f(est.get('estimated_auc_high'))})",
                _f(test.get("test_auc")),
            ),
            (
                "churn rate",
                f"{_f(est.get('estimated_churn_rate'), 4)} "
                f"({_f(est.get('estimated_churn_rate_low'), 4)}–"
                f"{_f(est.get('estimated_churn_rate_high'), 4)})",
                _f(est.get("reference_observed_churn_rate"), 4),
            ),
            ("lift at 10%", _f(est.get("estimated_lift_at_10"), 2), _f(test.get("lift_at_10"), 2)),
            (
                "value captured at 10%",
                _f(est.get("estimated_value_captured_at_10")),
                _f(test.get("value_captured_at_10")),
            ),
        ]
        console.print(
            table("estimated without labels (CBPE)", ["", "estimate", "test / reference"], rows)
        )
    rows = []
    for entry in summary.get("history", []):
        real, figures = entry.get("realised"), entry.get("test_figures") or {}
        control = entry.get("control") or {}
        saved = (
            f"{_f(control.get('customers_saved'), 1)} ({_f(control.get('customers_saved_low'), 1)}"
            f"–{_f(control.get('customers_saved_high'), 1)})"
            if control.get("matured")
            else "—"
        )
        if real is None:
            rows.append(
                (entry["cutoff"], _f(entry.get("estimated_auc")), "not matured", "", "", saved)
            )
            continue
        rows.append(
            (
                entry["cutoff"],
                _f(entry.get("estimated_auc")),
                f"{_f(real.get('auc'))} (test {_f(figures.get('test_auc'))})",
                f"{_f(real.get('ece'), 4)} (test {_f(figures.get('ece'), 4)})",
                f"{_f(real.get('lift_at_10'), 2)} / {_f(real.get('value_captured_at_10'))}",
                saved,
            )
        )
    if rows:
        columns = ["cutoff", "est. AUC", "realised AUC", "ECE", "lift@10 / value@10", "saved"]
        console.print(table("by cutoff", columns, rows))
    if summary.get("history_note"):
        console.print(f"[yellow]note:[/] {summary['history_note']}")
    console.print(
        f"report in [bold]{summary['out']}/monitor.html[/]"
        + (f", MLflow run {summary['run_id']}" if summary.get("run_id") else "")
    )
