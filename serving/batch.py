"""`retain score`: every customer of a warehouse scored at one cutoff by the champion models,
with reasons, offers and one ranked list per RM — the I/O around the scoring core
(``serving.score``, ``serving.lists``), written atomically.

The output directory (replaced only when everything succeeded):

- ``scores.parquet``: the month's answer, one row per customer (what every surface reads:
  scores, the already-leaving rule, reasons, offers, actions, list group and list membership);
- ``features.parquet``: the features behind those scores;
- ``assignments.parquet``: every listable customer's group (treated, control, explore, none),
  ``p_treat`` and rank — the month's randomised assignment (``serving.assign``);
- ``lists.parquet`` / ``growth.parquet``; ``lists/<lang>/<list_id>.csv`` / ``.xlsx`` in every
  configured language, and ``lists/<list_id>.csv`` / ``.xlsx`` in the run's language (links);
- ``rms.parquet``: RM names and capacities;
- ``history.parquet``: AUM and contribution of each scored customer, month by month over the
  last 12 months, and ``contacts.parquet``: their warehouse interactions of those 12 months
  (``features.history``) — what the RM page shows of a customer's past;
- ``report.html``: the portfolio report;
- ``summary.json``: what the CLI prints, plus the model versions.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.atomic import atomic_dir, private_tree, write_json
from features.build import CutoffError
from features.config import BankConfig
from features.history import customer_past
from features.materialize import write_features
from features.products import read_products_metadata
from features.sources.tables import read_location_table
from features.targets import version_column
from models.registry import RegistryError
from serving.assign import CONTROL, EXPLORE
from serving.champions import ModelSet, load_champions
from serving.explain import TOP_K
from serving.lists import (
    RANKED_BY,
    assignment_rows,
    assignments,
    build_growth_lists,
    build_lists,
    mask_name,
    with_membership,
)
from serving.report import write_report
from serving.score import (
    assemble,
    explain_churn,
    explain_growth,
    reason_fidelity,
    score_frame,
    with_growth_reasons,
    with_language,
    with_saved_value,
)
from serving.sheets import link_files, write_list_files

Step = Callable[[str], None]


def score_warehouse(
    warehouse: Path | str,
    cutoff: date,
    out: Path,
    config: BankConfig,
    lang: str,
    k: int | None = None,
    step: Step = lambda _: None,
    features_path: Path | None = None,
) -> dict:
    """Score ``warehouse`` at ``cutoff`` into ``out``; return the summary.

    Everything that can be set comes from ``config``, resolved once by the command: the engine
    (``config.warehouse``: DuckDB, or Spark with its master and memory — features, scores and
    reasons are then computed in Spark by the same functions), who is explained
    (``config.lists.explain_above``) and the list policy. ``features_path``: features at
    ``cutoff`` built already (by ``retain run``), used instead of building them again."""
    started = time.perf_counter()
    step("loading champion models")
    models = load_champions(ranking=config.lists.ranking)
    timings: dict[str, float] = {}
    with atomic_dir(out) as staging:
        features, config = _features(warehouse, cutoff, staging, config, features_path, step)
        timings["features"] = time.perf_counter() - started
        rms = read_location_table(warehouse, "rms", ["rm_id", "name", "capacity"])
        scored, reasons = _scored(
            models, features, staging, config, cutoff, warehouse, rms, k, step
        )
        timings |= scored.attrs.pop("timings")
        step("lists, files and report")
        shown = with_language(scored, lang)
        lists = build_lists(shown, rms, config.lists, k)
        growth = build_growth_lists(shown, rms, config.lists, lists)
        scored = with_membership(scored, lists, growth)
        _write(staging, scored, lists, growth, rms, models, lang, config, cutoff)
        step("customer history and contacts")
        tick = time.perf_counter()
        _write_past(staging, warehouse, cutoff, scored["customer_id"], config)
        timings["history"] = time.perf_counter() - tick
        summary = _summary(cutoff, scored, lists, growth, reasons, models, out)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        summary["timings"] = {name: round(s, 2) for name, s in timings.items()}
        summary |= reason_fidelity(features, scored, reasons) or {}
        write_json(staging / "summary.json", summary)
        private_tree(staging)  # customer data: readable by the bank's service account alone
    return summary


def _features(warehouse, cutoff, staging: Path, config, features_path, step):
    """The features at ``cutoff`` in ``staging`` (built, or linked from ``features_path``) and
    the configuration with the catalogue they were built with."""
    target = staging / "features.parquet"
    if features_path is None:
        write_features(warehouse, [cutoff], target, config, step)
    else:
        _reuse_features(Path(features_path), target, cutoff)
    features = pd.read_parquet(target)
    if features.empty:
        raise RegistryError(f"no customers at cutoff {cutoff} in {warehouse}")
    return features, config.with_products(read_products_metadata(target))


def _scored(models: ModelSet, features, staging: Path, config, cutoff, warehouse, rms, k, step):
    """The answer frame, assigned (with ``attrs["timings"]``), and the churn reasons, on the
    configured engine."""
    step("scoring")
    tick, timings = time.perf_counter(), {}
    growth_reasons, spark = explain_growth, None
    if config.warehouse.engine == "spark":
        from serving.spark_scoring import SparkScorer  # Spark only when asked for

        spark = SparkScorer(models, staging / "features.parquet", features, config.warehouse)
        above = config.lists.explain_above
        scores, reasons = spark.score_and_explain(config.lists.risk_bands, above)
        growth_reasons = spark.explain_growth
        timings["scoring_and_reasons"] = time.perf_counter() - tick
    else:
        scores = score_frame(models, features, config.lists.risk_bands)
        timings["scoring"] = time.perf_counter() - tick
        step("reasons")
        tick = time.perf_counter()
        reasons = explain_churn(models, features, scores, config.lists.explain_above)
        timings["reasons"] = time.perf_counter() - tick
    step("offers and assignment")
    try:
        names = read_location_table(warehouse, "customers", ["customer_id", "name"])
        masked = names.set_index("customer_id")["name"].map(mask_name)
        scored = with_saved_value(
            assemble(models, features, scores, reasons, config, masked),
            models,
            features,
            config.lists,
        )
        ranking = RANKED_BY["uplift" if models.uplift is not None else "risk"]
        scored = scored.join(
            assignments(scored, rms, config.lists, cutoff.isoformat(), k, score=ranking)
        )
        scored = with_growth_reasons(models, features, scored, config, growth_reasons)
    finally:
        if spark is not None:
            spark.close()
    scored.attrs["timings"] = timings
    return scored, reasons


def _reuse_features(source: Path, target: Path, cutoff: date) -> None:
    """Link (else copy) a features file built for ``cutoff``; files are replaced, never
    rewritten in place, so a hard link is safe."""
    cutoffs = pq.read_table(source, columns=["cutoff"]).column("cutoff").unique().to_pylist()
    if cutoffs and cutoffs != [cutoff]:
        raise CutoffError(f"{source} holds cutoffs {cutoffs[:3]}, not {cutoff}")
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write(staging, scored, lists, growth, rms, models: ModelSet, lang, config, cutoff) -> None:
    rms.to_parquet(staging / "rms.parquet", index=False)
    frame = scored.assign(**{version_column(n): v for n, v in models.versions.items()})
    frame.to_parquet(staging / "scores.parquet", index=False)
    assignment_rows(scored, cutoff.isoformat()).to_parquet(
        staging / "assignments.parquet", index=False
    )
    lists.to_parquet(staging / "lists.parquet", index=False)
    growth.to_parquet(staging / "growth.parquet", index=False)
    _write_list_files(staging / "lists", scored, lists, growth, lang, config)
    write_report(
        staging / "report.html", scored, lists, growth, cutoff, models.versions, lang, config
    )


def _write_list_files(folder: Path, scored, lists, growth, lang: str, config) -> None:
    """The files for people in every configured language (``lists/<lang>/``), and the run's
    language's at ``lists/`` too (hard links: today's paths, and the report's links, keep
    working)."""
    ids = pd.Index(scored["customer_id"])
    for each in dict.fromkeys([lang, *config.languages]):
        written = []
        for frame, prefix in ((lists, ""), (growth, "growth_")):  # a growth row's own reasons
            at = ids.get_indexer(frame["customer_id"])
            texts = {
                f"reason_{r}": scored[f"{prefix}reason_{r}_text_{each}"].to_numpy()[at]
                for r in range(1, TOP_K + 1)
            }
            written.append(frame.assign(**texts))
        write_list_files(folder / each, *written, each, config)
    link_files(folder / lang, folder)


def _write_past(staging: Path, warehouse, cutoff, customers, config: BankConfig) -> None:
    """``history.parquet`` and ``contacts.parquet`` of the scored customers."""
    history, contacts = customer_past(warehouse, cutoff, customers, config)
    history.to_parquet(staging / "history.parquet", index=False)
    contacts.to_parquet(staging / "contacts.parquet", index=False)


def _summary(cutoff, scored, lists, growth, reasons, models: ModelSet, out) -> dict:
    return {
        "cutoff": cutoff.isoformat(),
        "customers_scored": len(scored),
        "customers_explained": len(reasons.rows),
        "lists": int(lists["list_id"].nunique()),
        "listed_customers": len(lists),
        "leaving_now_listed": int(lists["leaving_now"].sum()),
        "growth_listed": len(growth),
        "control_customers": int((scored["list_group"] == CONTROL).sum()),
        "explore_customers": int((scored["list_group"] == EXPLORE).sum()),
        "models": models.versions,
        "ranking": "uplift" if models.uplift is not None else "risk",
        "out": str(out),
    }
