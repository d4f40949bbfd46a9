"""The month's answer for a bank of any size, built in batches of customers so that memory
follows the batch, not the bank (``retain score``, the score step of ``retain run``).

1. **Each batch** of the features file (:data:`BATCH_ROWS` rows, only the columns the answer
   reads): every model's score, churn reasons for the list candidates, saved value, masked
   names — what a customer's own row decides (``serving.score.answer_rows``). The next batch is
   read and scored in a thread while this one is explained and kept (:func:`ahead`). The wide
   columns (reasons in every language, names) go to a part file per batch; the narrow ones
   (ids, scores, context, what the offers read) stay in memory for the whole bank.
2. **The whole bank**, narrow columns only: offers against the month's averages, the
   randomised assignment, who is on a growth list; the growth reasons of those customers (a
   second read of the growth models' inputs); the lists, built from their candidates' rows
   alone with their reasons read back from the parts, and each customer's membership.
3. **Writing**: each batch's answer in the column order of ``scores.parquet`` (narrow columns,
   its part, growth reasons, membership, model versions), then one file.

Every row is computed by the same functions as for one frame and the ranking over the whole
bank is the same, so the answer does not depend on the batch size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.ahead import ahead
from features.atomic import atomic_file
from features.config import BankConfig
from features.targets import holds_column, truth_column, version_column
from serving.assign import ASSIGNMENT, CALLED
from serving.champions import ModelSet
from serving.explain import Reasons
from serving.lists import (
    MEMBERSHIP,
    RANKED_BY,
    assignments,
    build_growth_lists,
    build_lists,
    growth_listed,
    listable,
    masked_names,
    membership,
)
from serving.offers import product_values
from serving.score import (
    CONTEXT,
    answer_rows,
    driver_evidence,
    explain_churn,
    explain_growth,
    growth_reason_columns,
    holdings,
    offered_products,
    offers,
    reason_fidelity,
    score_frame,
    with_language,
    with_saved_value,
)

BATCH_ROWS = 200_000
NAME = "customer_name"
SAVED = ("uplift", "saved_value")  # with an uplift champion
# the batches of the features file, (first row, features), scored and explained in their order:
# (first row, features, scores, churn reasons)
Batch = tuple[int, pd.DataFrame]
Scorer = Callable[[Iterator[Batch]], Iterator[tuple[int, pd.DataFrame, pd.DataFrame, Reasons]]]
# growth reason texts of every customer from the offers to explain (missing: none)
GrowthTexts = Callable[[pd.Series], dict[str, np.ndarray]]


@dataclass
class Answer:
    """The month's answer: ``frame`` holds the narrow columns of every customer (in the
    features file's order), ``parts`` the wide ones of each batch (``starts``: each part's first
    row); ``order`` is the column order of ``scores.parquet``."""

    frame: pd.DataFrame
    parts: list[Path]
    starts: list[int]
    order: list[str]
    explained: int = 0
    evidence: np.ndarray | None = None
    listed: np.ndarray | None = None  # who is on a growth list
    rows: int = BATCH_ROWS  # customers a batch holds
    timings: dict[str, float] = field(default_factory=dict)

    def wide(self, rows: np.ndarray) -> pd.DataFrame:
        """The wide columns of the rows at positions ``rows`` (sorted), read back from the
        parts."""
        pieces = []
        for part, start, stop in self.batches():
            inside = rows[(rows >= start) & (rows < stop)] - start
            if len(inside) or not pieces and stop == len(self.frame):  # none: the columns
                pieces.append(pq.read_table(part).take(inside).to_pandas())
        return pd.concat(pieces, ignore_index=True)

    def batches(self) -> list[tuple[Path, int, int]]:
        """(part, first row, row after the last) of every batch."""
        stops = [*self.starts[1:], len(self.frame)]
        return list(zip(self.parts, self.starts, stops, strict=True))


def feature_batches(
    path: Path, columns: list[str], rows: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first row, frame) of each batch of at most ``rows`` rows of the features file."""
    start = 0
    source = pq.ParquetFile(path)
    for batch in source.iter_batches(batch_size=rows, columns=columns):
        frame = pa.Table.from_batches([batch]).to_pandas()
        yield start, frame
        start += len(frame)


def input_columns(path: Path, models: ModelSet, config: BankConfig) -> list[str]:
    """The columns of the features file the first pass reads: ids, every model's inputs, the
    context the answer keeps, holdings of the offered products and the truth of the churn
    driver (synthetic banks: reason fidelity)."""
    wanted = {"customer_id", *CONTEXT, truth_column("churn_driver")}
    wanted |= {f for m in models.all() for f in m.features}
    wanted |= set(models.churn.metadata["features"])
    wanted |= {holds_column(p) for p in offered_products(models, config)}
    if models.uplift is not None:
        wanted |= set(models.uplift.features)
    return [c for c in pq.read_schema(path).names if c in wanted]


def local_scorer(models: ModelSet, config: BankConfig, timings: dict[str, float]) -> Scorer:
    """Scores and churn reasons computed in this process (timed into ``timings``). The next
    batch is read and scored in a thread while this one explains and keeps the batch before:
    LightGBM leaves Python while it predicts, on every core, and what follows it in a batch
    (reasons, the answer's rows, the part file) is mostly one Python thread, during which the
    other core idled."""

    def scores(batch: Batch) -> pd.DataFrame:
        tick = time.perf_counter()
        scored = score_frame(models, batch[1], config.lists.risk_bands)
        timings["scoring"] = timings.get("scoring", 0.0) + time.perf_counter() - tick
        return scored

    def scored(batches: Iterator[Batch]):
        for (start, features), batch_scores in ahead(batches, scores):
            tick = time.perf_counter()
            reasons = explain_churn(models, features, batch_scores, config.lists.explain_above)
            timings["reasons"] = timings.get("reasons", 0.0) + time.perf_counter() - tick
            yield start, features, batch_scores, reasons

    return scored


def first_pass(
    models: ModelSet,
    path: Path,
    scorer: Scorer,
    config: BankConfig,
    names: pd.Series,
    scratch: Path,
    rows: int = BATCH_ROWS,
    step: Callable[[str], None] = lambda _: None,
) -> Answer:
    """Score and explain every batch of the features file at ``path``: the narrow columns in
    memory, the wide ones in a part file per batch in ``scratch``. ``names``: customer names
    by id."""
    held = [holds_column(p) for p in offered_products(models, config)]
    narrow, parts, starts, evidence, explained = [], [], [], [], 0
    total = pq.read_metadata(path).num_rows
    columns, order = input_columns(path, models, config), []
    for start, features, scores, reasons in scorer(feature_batches(path, columns, rows)):
        step(f"scoring and reasons: {start:,} of {total:,} customers")
        batch = answer_rows(features, scores, reasons, config)
        batch = with_saved_value(batch, models, features, config.lists)
        batch[NAME] = masked_names(batch["customer_id"].map(names))
        wide = [c for c in batch.columns if c.startswith("reason_")] + [NAME]
        order = order or list(batch.columns)
        parts.append(scratch / f"answer-{len(parts):05d}.parquet")
        table = pa.Table.from_pandas(batch[wide], preserve_index=False)
        pq.write_table(table, parts[-1])
        kept = batch.drop(columns=wide)
        narrow.append(kept.assign(**{c: features[c].to_numpy() for c in held}))
        starts.append(start)
        explained += len(reasons.rows)
        evidence.append(driver_evidence(features, reasons))
    frame = pd.concat(narrow, ignore_index=True)
    proven = None if any(e is None for e in evidence) else np.concatenate(evidence)
    return Answer(frame, parts, starts, order, explained, proven, rows=rows)


def bank_product_values(path: Path, models: ModelSet, config: BankConfig) -> dict[str, float]:
    """``serving.offers.product_values`` of the whole bank, reading a product's two columns at
    a time (its balance and whether it is held)."""
    present = set(pq.read_schema(path).names)
    values = {}
    for product in [p for p in config.products if p.product in models.cross_sell]:
        pair = (f"balance_{product.product}", holds_column(product.product))
        read = [c for c in pair if c in present]
        frame = pd.read_parquet(path, columns=read) if read else pd.DataFrame()
        values |= product_values((product,), frame)
    return values


def whole_bank(
    answer: Answer,
    models: ModelSet,
    path: Path,
    config: BankConfig,
    rms: pd.DataFrame,
    cutoff: str,
    k: int | None,
) -> np.ndarray:
    """Offers and the assignment over every customer (columns added to ``answer.frame`` in
    place; the holdings the offers read dropped); returns who is on a growth list."""
    frame, products = answer.frame, offered_products(models, config)
    values = bank_product_values(path, models, config)
    chosen = offers(frame, holdings(frame, products), values, config, answer.rows)
    for column in chosen.columns:
        frame[column] = chosen[column]
    for product in products:  # read by the offers only
        del frame[holds_column(product)]
    saved = [c for c in SAVED if c in answer.order]
    base = [c for c in answer.order if c not in (NAME, *saved)]
    answer.order = [*base, *chosen.columns, NAME, *saved]
    ranking = RANKED_BY["uplift" if models.uplift is not None else "risk"]
    assigned = assignments(frame, rms, config.lists, cutoff, k, score=ranking)
    for column in ASSIGNMENT:
        frame[column] = assigned[column]
    answer.order += list(ASSIGNMENT)
    return growth_listed(frame, config.lists)


def add_growth_reasons(answer: Answer, listed: np.ndarray, texts: GrowthTexts) -> None:
    """The growth reasons of the customers on a growth list (``listed``), as columns of
    ``answer.frame``."""
    frame = answer.frame
    columns = texts(frame["growth_offer"].where(listed))
    for name, values in columns.items():
        frame[name] = values
    answer.order += list(columns)


def candidates(answer: Answer, listed: np.ndarray, config: BankConfig) -> np.ndarray:
    """Positions of everybody a list can hold: the listable called by the assignment (the
    already leaving, treated, explore) and the growth-listed (``listed``)."""
    frame = answer.frame
    called = listable(frame, config.lists) & frame["list_group"].isin(CALLED)
    return np.flatnonzero(called.to_numpy() | listed)


def local_growth_texts(models: ModelSet, path: Path, langs, rows: int = BATCH_ROWS) -> GrowthTexts:
    """Growth reasons explained in this process, reading the features file again in batches
    (the growth models' inputs only) and explaining the rows with an offer."""

    def texts(offered: pd.Series) -> dict[str, np.ndarray]:
        out = growth_reason_columns(len(offered), langs)
        growth_models = [models.upgrade, *models.cross_sell.values()]
        inputs = [f for m in growth_models for f in m.features]
        columns = list(dict.fromkeys(["customer_id", *inputs]))
        for start, features in feature_batches(path, columns, rows):
            stop = start + len(features)
            batch = offered.iloc[start:stop].reset_index(drop=True)
            if batch.notna().any():
                for name, values in explain_growth(models, features, batch, langs).items():
                    out[name][start:stop] = values
        return out

    return texts


def lists_of(
    answer: Answer, rows: np.ndarray, rms: pd.DataFrame, config: BankConfig, lang: str, k
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(retention lists, growth lists, the rows of the candidates at ``rows`` with their
    reasons in ``lang`` as the list files read them); each customer's membership is added to
    ``answer.frame``. Ranked among the candidates alone: the same lists as among everybody."""
    frame = answer.frame
    rows = pd.concat([frame.iloc[rows].reset_index(drop=True), answer.wide(rows)], axis=1)
    shown = with_language(rows, lang)
    retention = build_lists(shown, rms, config.lists, k)
    growth = build_growth_lists(shown, rms, config.lists, retention)
    placed = membership(frame["customer_id"], retention, growth)
    for column in MEMBERSHIP:
        frame[column] = placed[column]
    answer.order += list(MEMBERSHIP)
    return retention, growth, shown


def fidelity(answer: Answer) -> dict:
    """``serving.score.reason_fidelity`` of the whole bank (nothing without truth)."""
    return reason_fidelity(answer.frame, answer.evidence) or {}


def write_answer(answer: Answer, out: Path, versions: dict[str, str]) -> None:
    """``scores.parquet``: each batch's answer in :attr:`Answer.order` with the model versions,
    one row group per batch, with the column types the whole bank's frame in one piece gives
    (:func:`answer_schema`)."""
    stamped = {version_column(n): v for n, v in versions.items()}
    schema = answer_schema(answer, stamped)
    with atomic_file(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for part, start, stop in answer.batches():
            narrow = answer.frame.iloc[start:stop].reset_index(drop=True)
            batch = pd.concat([narrow, pq.read_table(part).to_pandas()], axis=1)
            batch = batch[answer.order].assign(**stamped)
            writer.write_table(pa.Table.from_pandas(batch, schema=schema, preserve_index=False))


def answer_schema(answer: Answer, stamped: dict[str, str]) -> pa.Schema:
    """The schema (types and pandas metadata) of the answer as one frame: the narrow columns'
    from the whole bank's columns, each wide column's from the first part where it is not all
    empty (a text column empty in one batch is text all the same), the versions'."""
    narrow = [c for c in answer.order if c in answer.frame]
    described = [
        pa.Schema.from_pandas(answer.frame[narrow], preserve_index=False),
        pa.Schema.from_pandas(pd.DataFrame(stamped, index=[0]), preserve_index=False),
    ]
    parts = [pq.read_schema(part) for part in answer.parts]
    for name in parts[0].names:
        typed = [s for s in parts if s.field(name).type != pa.null()]
        described.append(_column(typed[0] if typed else parts[0], name))
    found = {s.field(i).name: (s.field(i), c) for s in described for i, c in _entries(s)}
    columns = [*answer.order, *stamped]
    pandas = json.loads(described[0].metadata[b"pandas"])
    pandas["columns"] = [found[c][1] for c in columns]
    return pa.schema([found[c][0] for c in columns], metadata={b"pandas": json.dumps(pandas)})


def _column(schema: pa.Schema, name: str) -> pa.Schema:
    """One column of ``schema`` with its pandas metadata."""
    entry = next(c for c in json.loads(schema.metadata[b"pandas"])["columns"] if c["name"] == name)
    pandas = {**json.loads(schema.metadata[b"pandas"]), "columns": [entry]}
    return pa.schema([schema.field(name)], metadata={b"pandas": json.dumps(pandas)})


def _entries(schema: pa.Schema) -> list[tuple[int, dict]]:
    """(field index, pandas metadata entry) of each column of ``schema``."""
    entries = {c["name"]: c for c in json.loads(schema.metadata[b"pandas"])["columns"]}
    return [(i, entries[name]) for i, name in enumerate(schema.names)]
