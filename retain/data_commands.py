"""`retain synth`, `validate`, `profile` and `features`: the data — a synthetic bank, the
warehouse checked against its contract, the bank at a glance, and point-in-time features."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from retain.options import (
    ConfigOption,
    EngineOption,
    SparkMasterOption,
    SparkMemoryOption,
    WarehouseOption,
    bank_config,
    engine_options,
    month_end,
    synthetic_bank,
    warehouse_location,
    with_options,
)
from retain.output import JsonOption, console, fail, progress_bar, save_json, table

DEFAULT_WAREHOUSE = Path("data/warehouse")


def synth(
    customers: Annotated[
        int | None, typer.Option(help="Number of customers.", show_default="20000")
    ] = None,
    months: Annotated[
        int | None, typer.Option(help="Months of history.", show_default="24")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last month-end of the window.", show_default="2024-12-31")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed: same seed, same files.", show_default="0")
    ] = None,
    out: Annotated[Path, typer.Option(help="Warehouse directory to write.")] = DEFAULT_WAREHOUSE,
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A retain.toml: its \\[synthetic] section gives the bank (size, ids, products), "
            "its tiers the ladder; options given here win. Default: ./retain.toml if present.",
        ),
    ] = None,
    shift_from: Annotated[
        str | None,
        typer.Option(
            help="Regime change: first month-end it affects (see docs/synthetic_regime.md)."
        ),
    ] = None,
    outflow_factor: Annotated[
        float | None,
        typer.Option(
            help="Regime change: payments to other banks multiplied by this.", show_default="1"
        ),
    ] = None,
    withdraw: Annotated[
        list[str] | None,
        typer.Option(help="Regime change: a product code withdrawn (repeat for more)."),
    ] = None,
    outflow_start_factor: Annotated[
        float | None,
        typer.Option(
            help="Regime change: customers start moving savings to other banks this many times "
            "as often.",
            show_default="1",
        ),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Generate a synthetic bank (warehouse tables plus the `truth` table)."""
    from synthetic.bank import write_bank

    given = {"customers": customers, "months": months, "seed": seed}
    if end is not None:
        given["end"] = month_end(end)
    regime = {
        "start": shift_from,
        "outflow_factor": outflow_factor,
        "withdrawn": withdraw,
        "outflow_start_factor": outflow_start_factor,
    }
    given["regime"] = {key: value for key, value in regime.items() if value is not None}
    config, bank = synthetic_bank(config_path, given)
    ladder = bank.tiers
    started = time.perf_counter()
    with progress_bar(f"synthetic bank, {config.customers:,} customers") as update:
        meta = write_bank(config, out, ladder=ladder, on_chunk=update)
    seconds = time.perf_counter() - started
    regime = config.regime.model_dump(mode="json") if config.regime else None
    _print_bank(out, seconds, meta, regime)
    save_json(json_path, {**meta, "regime": regime, "out": str(out), "seconds": round(seconds, 2)})


def _print_bank(out: Path, seconds: float, meta: dict, regime: dict | None) -> None:
    console.print(
        table(
            f"synthetic bank written to {out} in {seconds:.1f}s",
            ["table", "rows"],
            [(name, f"{rows:,}") for name, rows in meta["rows"].items()],
        )
    )
    if regime:
        console.print(
            f"regime change from {regime['start']}: payments to other banks "
            f"×{regime['outflow_factor']:g}, savings moved out ×{regime['outflow_start_factor']:g}"
            f", withdrawn: {', '.join(regime['withdrawn']) or 'none'}"
        )


def validate(
    warehouse: WarehouseOption = None,
    config: ConfigOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_memory: SparkMemoryOption = None,
    json_path: JsonOption = None,
) -> None:
    """Check a warehouse against the table contract, computed by the engine (a database by
    itself); list every violation, exit 1 if any."""
    from features.engine import EngineError
    from features.schema import validate_warehouse
    from features.sources.files import WarehouseError

    settings = engine_options(engine, spark_master, spark_memory)
    bank = with_options(bank_config(config), warehouse=settings)
    location = warehouse_location(warehouse, bank)
    try:
        with console.status("validating…"):
            violations = validate_warehouse(location, bank.warehouse)
    except (EngineError, WarehouseError) as exc:  # a Spark that does not start, a database
        fail(str(exc), 2)  # that does not answer
    save_json(
        json_path,
        {
            "warehouse": location,
            "valid": not violations,
            "violations": [v.__dict__ for v in violations],
        },
    )
    if not violations:
        console.print(f"[green]✓[/] {location}: every table passes every check")
        return
    console.print(
        table(
            f"{len(violations)} violation(s) in {location}",
            ["table", "column", "rule", "failing rows", "examples"],
            [
                (v.table, v.column, v.rule, f"{v.count:,}", "; ".join(v.examples))
                for v in violations
            ],
        )
    )
    raise typer.Exit(1)


def profile(
    warehouse: WarehouseOption = None, config: ConfigOption = None, json_path: JsonOption = None
) -> None:
    """Summarise a warehouse: tiers, AUM concentration, churn, product holdings."""
    from features.profile import profile_bank

    bank = bank_config(config)
    summary = profile_bank(warehouse_location(warehouse, bank), bank).summary()
    _print_profile(summary)
    save_json(json_path, summary)


def _print_profile(summary: dict) -> None:
    total = summary["customers"]
    console.print(
        table(
            f"customers by tier at {summary['as_of']}",
            ["tier", "customers", "share"],
            [(t, f"{n:,}", f"{n / total:.1%}") for t, n in summary["tiers"].items()],
        )
    )
    rows = [
        ("AUM held by the top 20% of customers", f"{summary['top20_aum_share']:.1%}"),
        ("monthly churn among eligible customers", f"{summary['monthly_churn_eligible']:.2%}"),
        (
            "median 3-month AUM change, churners / others",
            f"{summary['median_aum_change_3m']['churners']:+.1%} / "
            f"{summary['median_aum_change_3m']['non_churners']:+.1%}",
        ),
    ]
    if "churn_3m_truth" in summary:
        rows.append(
            (
                "3-month churn: realised / true probability",
                f"{summary['churn_3m_realised']:.2%} / {summary['churn_3m_truth']:.2%}",
            )
        )
    console.print(table("the bank at a glance", ["measure", "value"], rows))
    console.print(
        table(
            "product holding rates",
            ["product", "holders"],
            [(p, f"{r:.1%}") for p, r in summary["holding_rates"].items()],
        )
    )


def features(
    cutoffs: Annotated[
        str, typer.Option(help="FIRST:LAST month-end dates, e.g. 2024-01-31:2024-09-30.")
    ],
    warehouse: WarehouseOption = None,
    config: ConfigOption = None,
    every: Annotated[int, typer.Option(help="Take every N-th month.")] = 1,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_memory: SparkMemoryOption = None,
    out: Annotated[Path, typer.Option(help="Feature file to write.")] = Path(
        "data/features.parquet"
    ),
    json_path: JsonOption = None,
) -> None:
    """Validate the warehouse, then build point-in-time features and labels for monthly
    cutoffs."""
    from features.build import CutoffError, parse_cutoffs
    from features.engine import EngineError
    from features.materialize import write_features
    from features.sources.files import WarehouseError
    from retain.warehouse import require_valid

    bank = with_options(
        bank_config(config), warehouse=engine_options(engine, spark_master, spark_memory)
    )
    location = warehouse_location(warehouse, bank)
    started = time.perf_counter()
    try:
        months = parse_cutoffs(cutoffs, every)
        require_valid(location, bank.warehouse)
        with console.status("features") as status:
            summary = write_features(
                location,
                months,
                out,
                bank,
                step=lambda text: status.update(f"features: {text}…"),
            )
    except (CutoffError, EngineError, WarehouseError) as exc:
        fail(str(exc), 2)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    console.print(
        table(
            f"features written to {out}",
            ["engine", "cutoffs", "rows", "features", "labels", "seconds"],
            [
                (
                    summary["engine"],
                    len(months),
                    f"{summary['rows']:,}",
                    summary["features"],
                    len(summary["labels"]),
                    summary["seconds"],
                )
            ],
        )
    )
    save_json(json_path, summary)
