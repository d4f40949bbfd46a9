"""`retain demo`: the whole chain on a fresh synthetic bank — warehouse → features → models →
lists — in five numbered steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from features.config import BankConfig
from retain.options import (
    ConfigOption,
    PlotsOption,
    open_registry,
    synthetic_bank,
    with_options,
)
from retain.output import (
    JsonOption,
    console,
    fail,
    fmt_metric,
    progress_bar,
    save_json,
    table,
    warn,
)
from retain.score_commands import print_score, score_month

if TYPE_CHECKING:
    from synthetic.config import SynthConfig


def demo(
    customers: Annotated[
        int | None, typer.Option(help="Customers in the synthetic bank.", show_default="20000")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", show_default="0")] = None,
    out: Annotated[Path, typer.Option(help="Where the demo writes.")] = Path("data"),
    lang: Annotated[
        str | None,
        typer.Option(
            help="Language of reasons, sheets and report: zh or en (default: the "
            "configuration's language)."
        ),
    ] = None,
    config: ConfigOption = None,
    plots: PlotsOption = True,
    json_path: JsonOption = None,
) -> None:
    """Run the whole chain on a fresh synthetic bank: warehouse → features → models → lists.

    Writes OUT/warehouse, OUT/features.parquet and OUT/scores (lists and report).
    Models go to the MLflow store; each new one is promoted to champion if no worse.
    With --config the bank is the configuration's (its \\[synthetic] section and tiers).
    Lists, sheets and report are in the configuration's language unless --lang says otherwise.
    """
    synth, bank = synthetic_bank(config, {"customers": customers, "seed": seed})
    bank = with_options(bank, language=lang)
    warehouse, features_path = out / "warehouse", out / "features.parquet"
    last = synth.end
    started = time.perf_counter()
    _write_bank(synth, bank, warehouse)
    _write_features(warehouse, features_path, bank, last, synth.months)
    trained, decisions = _train_and_promote(features_path, bank, plots)
    _print_promotions(trained, decisions)
    console.print("5/5 scoring the latest month")
    scored = score_month(warehouse, last, out / "scores", bank, None)
    print_score(scored)
    file_for_monitoring(out, warehouse, last, bank)
    seconds = time.perf_counter() - started
    console.print(
        f"lists in [bold]{out / 'scores' / 'lists'}[/], report "
        f"[bold]{out / 'scores' / 'report.html'}[/] ({seconds:.0f}s in all)"
    )
    save_json(
        json_path,
        {
            "warehouse": str(warehouse),
            "features": str(features_path),
            "training": trained,
            "promotions": decisions,
            "scoring": scored,
            "seconds": round(seconds, 1),
        },
    )


def _write_bank(synth: SynthConfig, bank: BankConfig, warehouse: Path) -> None:
    """Step 1: the synthetic bank's warehouse."""
    from synthetic.bank import write_bank

    title = f"1/5 synthetic bank, {synth.customers:,} customers × {synth.months} months"
    with progress_bar(title) as update:
        write_bank(synth, warehouse, ladder=bank.tiers, on_chunk=update)


def _write_features(
    warehouse: Path, features_path: Path, bank: BankConfig, last: date, months: int
) -> None:
    """Step 2: features at every month with 3 months of history before it: the last `horizon`
    have no complete labels yet, the ones before train, validate and test the models."""
    from features.build import parse_cutoffs
    from features.materialize import write_features

    cutoffs = parse_cutoffs(f"{_months_before(last, months - 4)}:{last.isoformat()}")
    title = f"2/5 features at {len(cutoffs)} month-ends"
    with step_status(title) as update:
        write_features(warehouse, cutoffs, features_path, bank, step=update)


@contextmanager
def step_status(title: str) -> Iterator[Callable[[str], None]]:
    """A step's status line; yields ``update(text)``. At a terminal a spinner that updates in
    place; elsewhere (a log, a pipe, CI) the title once as a plain line, so the step shows."""
    if not console.is_terminal:
        console.print(title)
        yield lambda _text: None
        return
    with console.status(title) as status:
        yield lambda text: status.update(f"{title}: {text}…")


def _train_and_promote(
    features_path: Path, bank: BankConfig, plots: bool
) -> tuple[dict, list[dict]]:
    """Step 3: every model trained; then each promoted to champion when no worse."""
    from models.registry import RegistryError
    from training.dataset import DatasetError
    from training.promote import promote as promote_model
    from training.run import train_task
    from training.train import TrainConfig

    open_registry()
    try:
        with progress_bar("3/5 training churn, cross-sell and upgrade models") as update:
            trained = train_task(
                features_path, "all", TrainConfig(), warn, 0, update, bank=bank, plots=plots
            )
    except DatasetError as exc:  # a bank too small to learn from
        fail(str(exc), 1, "a demo bank needs thousands of customers: try --customers 6000")
    decisions = []
    try:
        for name in trained["models"]:
            decisions.append(promote_model(name))
    except RegistryError as exc:
        fail(str(exc), 1)
    return trained, decisions


def _print_promotions(trained: dict, decisions: list[dict]) -> None:
    """Step 4: the models, their figures and who is champion."""
    console.print(
        table(
            "4/5 models (promoted to champion when no worse)",
            [
                "model",
                "version",
                "champion",
                "test AUC",
                "LightGBM defaults",
                "AUC / oracle",
                "ECE",
            ],
            [
                (
                    d["model"],
                    d["challenger"],
                    d["champion"],
                    *(
                        fmt_metric(trained["per_model"][d["model"]].get(k))
                        for k in ("test_auc", "lightgbm_defaults_test_auc", "auc_to_oracle", "ece")
                    ),
                )
                for d in decisions
            ],
        )
    )


def _months_before(month_end: date, months: int) -> str:
    import pandas as pd

    return (pd.Timestamp(month_end) - pd.offsets.MonthEnd(months)).date().isoformat()


def file_for_monitoring(out: Path, warehouse: Path, last: date, bank: BankConfig) -> None:
    """Leave two months where ``retain monitor`` and ``retain run`` look for them
    (``<out>/runs/<cutoff>/scores``): the month just scored, and the month ``horizon`` months
    before it — whose labels have matured, so the monitor shows realised figures and the
    control group, not only drift: ``retain monitor --reference <that> --current <last>``."""
    runs = out / "runs"
    reference = date.fromisoformat(_months_before(last, bank.churn.horizon_months))
    console.print(f"scoring {reference} too, for monitoring")
    score_month(warehouse, reference, runs / reference.isoformat() / "scores", bank, None)
    _link_tree(out / "scores", runs / last.isoformat() / "scores")
    console.print(
        f"months for monitoring in [bold]{runs}[/]: try `retain monitor --reference "
        f"{reference} --current {last}`"
    )


def _link_tree(source: Path, target: Path) -> None:
    """``target`` becomes a copy of ``source`` made of hard links (no second copy of the data;
    a later run replaces files, never edits them in place), or of copies where links fail."""
    import os
    import shutil

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    staging = target.with_name(target.name + ".filing")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, copy_function=link)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
