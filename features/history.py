"""A customer's past as the RM page shows it beside the month's answer: AUM and contribution
month by month, and the contacts the warehouse holds — read once by ``retain score`` so the
page never reads the warehouse.

- :func:`monthly_history`: per customer and month of the last ``HISTORY_MONTHS`` up to the
  cutoff, ``aum`` (what the assets hold, as the features' AUM) and ``contribution`` (that
  month's margin and fees, as ``contribution_12m`` adds them up) — two numbers a month, one
  pass over the balances of those months.
- :func:`recent_contacts`: the ``interactions`` of the last ``HISTORY_MONTHS`` up to the cutoff
  day (calls, visits, messages, events and their outcome). A warehouse's timestamps are the
  bank's local time (``time_zone``): timezone-aware ones are turned into it, naive ones are
  taken as they are.

Both run on the warehouse's engine (DuckDB, Spark or the database) and keep the customers asked
for only.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from features.config import BankConfig
from features.engine import open_warehouse
from features.panel import Warehouse, aum_of, contribution_of
from features.sources.database import is_database_url

HISTORY_MONTHS = 12
HISTORY_FILE, CONTACTS_FILE = "history.parquet", "contacts.parquet"
DUCKDB_MEMORY = "1GB"  # what the ordered writes may hold before they spill
CONTACT_COLUMNS = ("customer_id", "ts", "kind", "rm_id", "outcome", "interaction_id")


def first_month(cutoff: date, months: int = HISTORY_MONTHS) -> date:
    """The month-end ``months - 1`` months before the cutoff's: the first month shown."""
    start = pd.Timestamp(cutoff) - pd.DateOffset(months=months - 1) + pd.offsets.MonthEnd(0)
    return start.date()


def history_rows(wh: Warehouse, cutoff: date):
    """The expression of :func:`monthly_history` for every customer, unordered."""
    b = wh.balances.filter(wh.balances.month.between(first_month(cutoff), cutoff))
    b = b.join(wh.products, "product")
    return b.group_by(customer_id=b.customer_id, month=b.month).aggregate(
        aum=aum_of(b).sum(), contribution=contribution_of(b).sum()
    )


def contact_rows(wh: Warehouse, cutoff: date):
    """The expression of :func:`recent_contacts` for every customer, unordered, ``ts`` as the
    warehouse holds it."""
    start = pd.Timestamp(cutoff) - pd.DateOffset(months=HISTORY_MONTHS)
    since = datetime.combine(start.date() + timedelta(days=1), datetime.min.time())
    until = datetime.combine(cutoff + timedelta(days=1), datetime.min.time())
    i = wh.interactions
    return i.filter((i.ts >= since) & (i.ts < until)).select(*CONTACT_COLUMNS)


def monthly_history(wh: Warehouse, cutoff: date, customers: Iterable) -> pd.DataFrame:
    """``customer_id``, ``month`` (month-end date), ``aum`` and ``contribution`` (float32) for
    the months from :func:`first_month` to ``cutoff``, of ``customers`` only."""
    frame = history_rows(wh, cutoff).to_pandas()
    frame = frame[frame["customer_id"].isin(pd.Index(customers))]
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    frame = frame.astype({"aum": "float32", "contribution": "float32"})
    return frame.sort_values(["customer_id", "month"], ignore_index=True)


def recent_contacts(
    wh: Warehouse, cutoff: date, customers: Iterable, time_zone: str
) -> pd.DataFrame:
    """:data:`CONTACT_COLUMNS` of the interactions from 12 months before the cutoff to the
    cutoff day, of ``customers`` only, newest first per customer; ``ts`` naive, local."""
    frame = contact_rows(wh, cutoff).to_pandas()
    frame = frame[frame["customer_id"].isin(pd.Index(customers))]
    ts = pd.to_datetime(frame["ts"])
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert(time_zone).dt.tz_localize(None)
    frame = frame.assign(ts=ts.astype("datetime64[us]"))
    frame = frame.astype({"kind": "string", "outcome": "string"})
    return frame.sort_values(
        ["customer_id", "ts", "interaction_id"], ascending=[True, False, True], ignore_index=True
    )


def write_customer_past(
    warehouse, cutoff: date, features: Path, folder: Path, config: BankConfig
) -> None:
    """``history.parquet`` (:func:`monthly_history`) and ``contacts.parquet``
    (:func:`recent_contacts`) in ``folder``, of the customers of the features file at
    ``features`` (one cutoff).

    On DuckDB over a parquet warehouse both are written by the engine straight from the query,
    ordered, never held in this process (10M customers × 12 months), on one thread and within
    :data:`DUCKDB_MEMORY` (spilling next to ``folder``); elsewhere (Spark, a database,
    timestamps with a time zone) through frames."""
    con, wh = open_warehouse(warehouse, config.warehouse)
    try:
        if _streams(warehouse, wh, config):
            _write_streamed(con, wh, cutoff, features, Path(folder))
            return
        customers = pd.read_parquet(features, columns=["customer_id"])["customer_id"]
        monthly_history(wh, cutoff, customers).to_parquet(Path(folder) / HISTORY_FILE, index=False)
        recent_contacts(wh, cutoff, customers, config.time_zone).to_parquet(
            Path(folder) / CONTACTS_FILE, index=False
        )
    finally:
        if config.warehouse.engine == "duckdb":  # a Spark session is shared: left running
            con.disconnect()


def _streams(warehouse, wh: Warehouse, config: BankConfig) -> bool:
    naive = wh.interactions.schema()["ts"].timezone is None
    return config.warehouse.engine == "duckdb" and not is_database_url(str(warehouse)) and naive


def _write_streamed(con, wh: Warehouse, cutoff: date, features: Path, folder: Path) -> None:
    # one thread, bounded memory: this runs beside the scoring, which has the other core
    scratch = Path(tempfile.mkdtemp(prefix=".past.", dir=folder.parent))
    con.raw_sql(f"SET temp_directory = '{scratch}'")
    con.raw_sql(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.raw_sql("SET threads = 1")
    try:
        _write_ordered(con, wh, cutoff, features, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_ordered(con, wh: Warehouse, cutoff: date, features: Path, folder: Path) -> None:
    ids = con.read_parquet(str(features), table_name="past_customers").select("customer_id")
    history = history_rows(wh, cutoff).semi_join(ids, "customer_id")
    history = history.mutate(
        month=history.month.cast("date"),
        aum=history.aum.cast("float32"),
        contribution=history.contribution.cast("float32"),
    ).order_by(["customer_id", "month"])
    con.to_parquet(history, folder / HISTORY_FILE)
    contacts = contact_rows(wh, cutoff).semi_join(ids, "customer_id")
    contacts = contacts.order_by(
        [contacts.customer_id, contacts.ts.desc(), contacts.interaction_id]
    )
    con.to_parquet(contacts, folder / CONTACTS_FILE)
