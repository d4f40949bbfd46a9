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
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.atomic import atomic_dir, private_tree, write_json
from features.build import CutoffError
from features.config import BankConfig
from features.history import write_customer_past
from features.materialize import write_features
from features.products import read_products_metadata
from features.sources.tables import read_location_table
from models.registry import RegistryError
from serving.answer_batches import (
    BATCH_ROWS,
    Answer,
    add_growth_reasons,
    candidates,
    fidelity,
    first_pass,
    lists_of,
    local_growth_texts,
    local_scorer,
    whole_bank,
    write_answer,
)
from serving.assign import CONTROL, EXPLORE
from serving.champions import ModelSet, load_champions
from serving.explain import TOP_K
from serving.lists import assignment_rows
from serving.report import write_report
from serving.sheets import link_files
from serving.sheets_split import write_in_two

Step = Callable[[str], None]
SUMMARY = "summary.json"  # every scored month has it: an earlier output, replaceable


def score_warehouse(
    warehouse: Path | str,
    cutoff: date,
    out: Path,
    config: BankConfig,
    lang: str,
    k: int | None = None,
    step: Step = lambda _: None,
    features_path: Path | None = None,
    batch_rows: int = BATCH_ROWS,
    models: ModelSet | None = None,
) -> dict:
    """Score ``warehouse`` at ``cutoff`` into ``out``; return the summary.

    Everything that can be set comes from ``config``, resolved once by the command: the engine
    (``config.warehouse``: DuckDB, or Spark with its master and memory — features, scores and
    reasons are then computed in Spark by the same functions), who is explained
    (``config.lists.explain_above``) and the list policy. ``features_path``: features at
    ``cutoff`` built already (by ``retain run``), used instead of building them again.
    Customers are scored ``batch_rows`` at a time (``serving.answer_batches``). ``models``: the
    champions as loaded by the command, else loaded here."""
    started = time.perf_counter()
    step("loading champion models")
    if models is None:
        models = load_champions(ranking=config.lists.ranking)
    timings = {"models": time.perf_counter() - started}
    with atomic_dir(out, holds=SUMMARY) as staging, ThreadPoolExecutor(1) as beside:
        tick = time.perf_counter()
        path, config = _features(warehouse, cutoff, staging, config, features_path, step)
        timings["features"] = time.perf_counter() - tick
        past = []

        def beside_the_answer() -> None:
            # the customers' past is the engine's work (DuckDB, one thread): once the models
            # are done with both cores it runs beside the rest, mostly one Python thread
            args = (write_customer_past, warehouse, cutoff, path, staging, config)
            past.append(beside.submit(_timed, *args))

        rms = read_location_table(warehouse, "rms", ["rm_id", "name", "capacity"])
        scratch = Path(tempfile.mkdtemp(prefix=".answer.", dir=staging.parent))
        try:
            month = (cutoff, warehouse, rms, k)
            answer = _answer(
                models, path, scratch, config, month, step, batch_rows, beside_the_answer
            )
            step("lists, files and report")
            lists, growth = _write(staging, answer, rms, models, lang, config, (cutoff, k), scratch)
            timings |= answer.timings
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        step("customer history and contacts")
        tick = time.perf_counter()
        timings["history"] = past[0].result()
        timings["history_waited"] = time.perf_counter() - tick
        summary = _summary(cutoff, answer, lists, growth, models, out)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        summary["timings"] = {name: round(s, 2) for name, s in timings.items()}
        summary |= fidelity(answer)
        write_json(staging / SUMMARY, summary)
        private_tree(staging)  # customer data: readable by the bank's service account alone
    return summary


def _timed(work: Callable, *args) -> float:
    """Seconds ``work(*args)`` took."""
    tick = time.perf_counter()
    work(*args)
    return time.perf_counter() - tick


def _features(warehouse, cutoff, staging: Path, config, features_path, step):
    """The features file at ``cutoff`` in ``staging`` (built, or linked from
    ``features_path``) and the configuration with the catalogue it was built with."""
    target = staging / "features.parquet"
    if features_path is None:
        write_features(warehouse, [cutoff], target, config, step)
    else:
        _reuse_features(Path(features_path), target, cutoff)
    if not pq.read_metadata(target).num_rows:
        raise RegistryError(f"no customers at cutoff {cutoff} in {warehouse}")
    return target, config.with_products(read_products_metadata(target))


def _answer(models: ModelSet, path, scratch, config, month, step, rows, scored) -> Answer:
    """The month's answer (``serving.answer_batches``): scores and churn reasons on the
    configured engine, batch by batch, then ``scored()``; offers, assignment and growth
    reasons over the bank. ``month``: (cutoff, warehouse, RMs, list size or None)."""
    cutoff, warehouse, rms, k = month
    timings, spark = {}, None
    tick = time.perf_counter()
    names = read_location_table(warehouse, "customers", ["customer_id", "name"])
    names = names.set_index("customer_id")["name"]
    try:
        if config.warehouse.engine == "spark":
            scorer, texts, spark = _spark(models, path, config, step)
            timings["scoring_and_reasons"] = time.perf_counter() - tick
        else:
            scorer = local_scorer(models, config, timings)
            texts = local_growth_texts(models, path, config.languages, rows)
        answer = first_pass(models, path, scorer, config, names, scratch, rows, step)
        timings["first_pass"] = time.perf_counter() - tick
        scored()
        step("offers and assignment")
        tick = time.perf_counter()
        listed = whole_bank(answer, models, path, config, rms, cutoff.isoformat(), k)
        timings["offers_and_assignment"] = time.perf_counter() - tick
        step("growth reasons")
        tick = time.perf_counter()
        add_growth_reasons(answer, listed, texts)
        timings["growth_reasons"] = time.perf_counter() - tick
    finally:
        if spark is not None:
            spark.close()
    answer.timings = timings
    answer.listed = listed
    return answer


def _spark(models: ModelSet, path: Path, config: BankConfig, step):
    """Scores and churn reasons of every customer computed in Spark, handed out batch by
    batch; growth reasons computed there too."""
    from serving.spark_scoring import SparkScorer  # Spark only when asked for

    step("scoring and reasons on Spark")
    ids = pd.read_parquet(path, columns=["customer_id"])
    spark = SparkScorer(models, path, ids, config.warehouse)
    scores, reasons = spark.score_and_explain(config.lists.risk_bands, config.lists.explain_above)

    def scorer(batches):
        for start, features in batches:
            stop = start + len(features)
            batch_scores = scores.iloc[start:stop].reset_index(drop=True)
            yield start, features, batch_scores, reasons.between(start, stop)

    def texts(offered: pd.Series):
        return spark.explain_growth(models, ids, offered, config.languages)

    return scorer, texts, spark


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


def _write(staging, answer: Answer, rms, models: ModelSet, lang, config, month, scratch):
    """Every file of the month but the customers' past; returns the lists (the seconds of
    each part go to ``answer.timings``). ``month``: (cutoff, list size or None)."""
    cutoff, k = month
    tick = time.perf_counter()

    def timed(name: str) -> None:
        nonlocal tick
        answer.timings[name] = time.perf_counter() - tick
        tick = time.perf_counter()

    lists, growth, shown = lists_of(
        answer, candidates(answer, answer.listed, config), rms, config, lang, k
    )
    timed("lists")
    scored = answer.frame
    rms.to_parquet(staging / "rms.parquet", index=False)
    write_answer(answer, staging / "scores.parquet", models.versions)
    assignment_rows(scored, cutoff.isoformat()).to_parquet(
        staging / "assignments.parquet", index=False
    )
    lists.to_parquet(staging / "lists.parquet", index=False)
    growth.to_parquet(staging / "growth.parquet", index=False)
    timed("tables")
    _write_list_files(staging / "lists", shown, lists, growth, lang, config, scratch)
    timed("list_files")
    write_report(
        staging / "report.html", scored, lists, growth, cutoff, models.versions, lang, config
    )
    timed("report")
    return lists, growth


def _write_list_files(folder: Path, scored, lists, growth, lang: str, config, scratch) -> None:
    """The files for people in every configured language (``lists/<lang>/``), and the run's
    language's at ``lists/`` too (hard links: today's paths, and the report's links, keep
    working); a large bank's by two processes (``serving.sheets_split``)."""
    ids = pd.Index(scored["customer_id"])
    frames = {}
    for each in dict.fromkeys([lang, *config.languages]):
        written = []
        for frame, prefix in ((lists, ""), (growth, "growth_")):  # a growth row's own reasons
            at = ids.get_indexer(frame["customer_id"])
            texts = {
                f"reason_{r}": scored[f"{prefix}reason_{r}_text_{each}"].to_numpy()[at]
                for r in range(1, TOP_K + 1)
            }
            written.append(frame.assign(**texts))
        frames[each] = tuple(written)
    write_in_two(folder, frames, config, scratch / "sheets")
    link_files(folder / lang, folder)


def _summary(cutoff, answer: Answer, lists, growth, models: ModelSet, out) -> dict:
    scored = answer.frame
    return {
        "cutoff": cutoff.isoformat(),
        "customers_scored": len(scored),
        "customers_explained": answer.explained,
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
