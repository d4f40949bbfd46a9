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

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import pandas as pd

from features.config import BankConfig
from features.engine import open_warehouse
from features.panel import Warehouse, aum_of, contribution_of

HISTORY_MONTHS = 12
CONTACT_COLUMNS = ("customer_id", "ts", "kind", "rm_id", "outcome", "interaction_id")


def first_month(cutoff: date, months: int = HISTORY_MONTHS) -> date:
    """The month-end ``months - 1`` months before the cutoff's: the first month shown."""
    start = pd.Timestamp(cutoff) - pd.DateOffset(months=months - 1) + pd.offsets.MonthEnd(0)
    return start.date()


def monthly_history(wh: Warehouse, cutoff: date, customers: Iterable) -> pd.DataFrame:
    """``customer_id``, ``month`` (month-end date), ``aum`` and ``contribution`` (float32) for
    the months from :func:`first_month` to ``cutoff``, of ``customers`` only."""
    b = wh.balances.filter(wh.balances.month.between(first_month(cutoff), cutoff))
    b = b.join(wh.products, "product")
    expr = b.group_by(customer_id=b.customer_id, month=b.month).aggregate(
        aum=aum_of(b).sum(), contribution=contribution_of(b).sum()
    )
    frame = expr.to_pandas()
    frame = frame[frame["customer_id"].isin(pd.Index(customers))]
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    frame = frame.astype({"aum": "float32", "contribution": "float32"})
    return frame.sort_values(["customer_id", "month"], ignore_index=True)


def recent_contacts(
    wh: Warehouse, cutoff: date, customers: Iterable, time_zone: str
) -> pd.DataFrame:
    """:data:`CONTACT_COLUMNS` of the interactions from 12 months before the cutoff to the
    cutoff day, of ``customers`` only, newest first per customer; ``ts`` naive, local."""
    start = pd.Timestamp(cutoff) - pd.DateOffset(months=HISTORY_MONTHS)
    since = datetime.combine(start.date() + timedelta(days=1), datetime.min.time())
    until = datetime.combine(cutoff + timedelta(days=1), datetime.min.time())
    i = wh.interactions
    expr = i.filter((i.ts >= since) & (i.ts < until)).select(*CONTACT_COLUMNS)
    frame = expr.to_pandas()
    frame = frame[frame["customer_id"].isin(pd.Index(customers))]
    ts = pd.to_datetime(frame["ts"])
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert(time_zone).dt.tz_localize(None)
    frame = frame.assign(ts=ts.astype("datetime64[us]"))
    frame = frame.astype({"kind": "string", "outcome": "string"})
    return frame.sort_values(["customer_id", "ts"], ascending=[True, False], ignore_index=True)


def customer_past(
    warehouse, cutoff: date, customers: Iterable, config: BankConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(:func:`monthly_history`, :func:`recent_contacts`) of ``customers`` at ``cutoff``, on
    the configured engine."""
    customers = pd.Index(customers)
    con, wh = open_warehouse(warehouse, config.warehouse)
    try:
        return (
            monthly_history(wh, cutoff, customers),
            recent_contacts(wh, cutoff, customers, config.time_zone),
        )
    finally:
        if config.warehouse.engine == "duckdb":  # a Spark session is shared: left running
            con.disconnect()
