"""Turn a simulated chunk into warehouse rows: balances, transactions, interactions, complaints,
RM assignments — everything the bank would record, and nothing it would not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from synthetic.customers import CustomerChunk
from synthetic.dynamics import MonthState
from synthetic.products import Catalogue

DIRECTIONS = pa.array(["in", "out"])
CHANNELS = pa.array(["counter", "atm", "mobile", "online"])
COUNTERPARTIES = pa.array(["own", "other_bank", "merchant", "salary"])
IN, OUT = 0, 1
COUNTER, ATM, MOBILE, ONLINE = range(4)
OWN, OTHER_BANK, MERCHANT, SALARY = range(4)
KINDS = np.array(["call", "message", "visit", "event"], dtype=object)
KIND_P = (0.55, 0.25, 0.12, 0.08)
OUTCOMES = np.array(["reached", "no_answer", "interested", "declined"], dtype=object)
OUTCOME_P = (0.55, 0.25, 0.12, 0.08)
CATEGORIES = np.array(["service", "fees", "product", "wait_time", "digital"], dtype=object)
CAMPAIGN_KINDS = np.array(["call", "visit", "message"], dtype=object)  # a retention contact
CAMPAIGN_KIND_P = (0.75, 0.15, 0.10)
CAMPAIGN_OUTCOMES = np.array(["reached", "interested", "declined"], dtype=object)
CAMPAIGN_OUTCOME_P = (0.6, 0.25, 0.15)
CAMPAIGN_DAYS = 14  # retention calls are made in the first two weeks after the list
SECONDS_PER_DAY = 86_400


class Calendar:
    """Month-ends of the window and helpers to draw a moment inside a month for a chunk's
    customers, never before the day a customer opened."""

    def __init__(self, months: pd.DatetimeIndex, cust: CustomerChunk):
        self.month_end = months.to_numpy().astype("datetime64[D]")
        self.month_start = months.to_numpy().astype("datetime64[M]").astype("datetime64[D]")
        self.days = (self.month_end - self.month_start).astype(int) + 1
        self.open_month, self.open_day = cust.open_month, cust.open_day

    def moment(self, rng, t: int, who: np.ndarray, first_day=0, last_day=None) -> np.ndarray:
        """Random timestamps (seconds), one for each customer index in ``who``, within days
        [first_day, last_day] (0-based) of month t. In a customer's opening month the days start
        at the opening day, and run to the month's end when it falls after ``last_day``."""
        last = self.days[t] - 1 if last_day is None else min(last_day, self.days[t] - 1)
        opening = self.open_month[who] == t
        first = np.where(opening, np.maximum(first_day, self.open_day[who]), first_day)
        last = np.where(first > last, self.days[t] - 1, last)
        n = len(who)
        day = rng.integers(first, last + 1, n)
        seconds = rng.integers(8 * 3600, 21 * 3600, n)
        start = self.month_start[t].astype("datetime64[s]")
        return start + (day * SECONDS_PER_DAY + seconds).astype("timedelta64[s]")

    def day_in_month(self, month_index: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The date ``day`` (1-based, ≤ 28) of window month ``month_index`` (may lie beyond)."""
        first = self.month_start[0].astype("datetime64[M]")
        return (first + month_index.astype("timedelta64[M]")).astype("datetime64[D]") + (
            day - 1
        ).astype("timedelta64[D]")


def _cents(x: np.ndarray) -> np.ndarray:
    return np.round(x, 2)


def balances_rows(
    rng, cust: CustomerChunk, months: list[MonthState], cal: Calendar, catalogue: Catalogue
):
    frames = []
    maturity_day = (cust.customer_id % 28 + 1).astype(int)
    for s in months:
        for p, name in enumerate(catalogue.codes):
            rows = np.flatnonzero(s.open & (s.held[:, p] | s.closed[:, p]))
            if rows.size == 0:
                continue
            closing = s.closed[rows, p]
            if catalogue.asset[p]:
                # a product closing this month still held its money for the month's average;
                # it moves to demand deposits at month end, so AUM does not dip
                avg = s.aum[rows] * s.shares[rows, p]
            else:
                avg = s.liabilities[rows, p]
            end = np.where(closing, 0.0, avg * np.exp(rng.normal(0, 0.04, rows.size)))
            maturity = np.full(rows.size, np.datetime64("NaT"), dtype="datetime64[D]")
            if p in catalogue.maturing:
                due = s.maturity[rows, p] >= 0
                maturity[due] = cal.day_in_month(s.maturity[rows[due], p], maturity_day[rows[due]])
            frames.append(
                pd.DataFrame(
                    {
                        "customer_id": cust.customer_id[rows],
                        "month": np.full(rows.size, cal.month_end[s.month]),
                        "product": name,
                        "avg_daily_balance": _cents(avg),
                        "end_balance": _cents(end),
                        "status": np.where(closing, "closed", "open").astype(object),
                        "maturity_date": maturity,
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["customer_id", "month", "product"], kind="stable", ignore_index=True)


class _TxnBuffer:
    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, idx, ts, amount, direction, channel, counterparty):
        if len(idx):
            n = len(idx)
            as_array = lambda v: np.broadcast_to(np.asarray(v, dtype=np.int8), (n,))  # noqa: E731
            self.parts.append(
                (idx, ts, amount, as_array(direction), as_array(channel), as_array(counterparty))
            )

    def table(self, cust: CustomerChunk, first_txn_id: int) -> pa.Table:
        idx, ts, amount, direction, channel, counterparty = (
            np.concatenate([p[i] for p in self.parts]) for i in range(6)
        )
        order = np.lexsort((ts, cust.customer_id[idx]))
        take = lambda values, codes: values.take(pa.array(codes[order]))  # noqa: E731
        return pa.table(
            {
                "txn_id": pa.array(
                    np.arange(first_txn_id, first_txn_id + len(idx), dtype=np.int64)
                ),
                "customer_id": pa.array(cust.customer_id[idx][order]),
                "ts": pa.array(ts[order]),
                "amount": pa.array(_cents(np.maximum(amount[order], 1.0))),
                "direction": take(DIRECTIONS, direction),
                "channel": take(CHANNELS, channel),
                "counterparty": take(COUNTERPARTIES, counterparty),
            }
        )


def _repeat(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def transactions_table(
    rng,
    cust,
    months: list[MonthState],
    cal: Calendar,
    first_txn_id: int,
    other_bank_factor: np.ndarray | None = None,
):
    """Transactions of a chunk; ``other_bank_factor[t]`` multiplies every payment or transfer
    to another bank in window month t (a regime change; scaling draws no random numbers, so the
    rest of the table is unchanged)."""
    buf = _TxnBuffer()
    # the steps draw in this order within each month: reordering them changes the bank
    for s in months:
        to_other_bank = 1.0 if other_bank_factor is None else float(other_bank_factor[s.month])
        _salary_credits(rng, buf, cust, s, cal)
        _everyday_payments(rng, buf, cust, s, cal, to_other_bank)
        _driver_outflows(rng, buf, s, cal, to_other_bank)
        _big_purchases(rng, buf, s, cal)
        _exit_transfers(rng, buf, s, cal, to_other_bank)
    return buf.table(cust, first_txn_id)


def _salary_credits(rng, buf: _TxnBuffer, cust, s: MonthState, cal: Calendar) -> None:
    idx = np.flatnonzero(s.salary_paid)
    salary = cust.salary[idx] * rng.uniform(0.97, 1.03, idx.size)
    buf.add(idx, cal.moment(rng, s.month, idx, 4, 14), salary, IN, ONLINE, SALARY)


def _everyday_payments(
    rng, buf: _TxnBuffer, cust, s: MonthState, cal: Calendar, to_other_bank: float
) -> None:
    """Card payments, cash withdrawals and transfers in and out, fewer for customers who are
    leaving, have left or have a driver on."""
    t = s.month
    account = s.open & ~s.closed_out
    factor = np.where(s.alive, 1.0, np.where(s.exit_now, 0.5, 0.1)) * account
    factor = factor * np.where(s.any_driver, 0.7, 1.0)

    idx = _repeat(rng.poisson(cust.activity * factor))
    mobile = rng.random(idx.size) < cust.mobile_share[idx]
    channel = np.where(mobile, MOBILE, np.where(rng.random(idx.size) < 0.6, ONLINE, COUNTER))
    buf.add(
        idx,
        cal.moment(rng, t, idx),
        rng.lognormal(np.log(250), 1.0, idx.size),
        OUT,
        channel,
        MERCHANT,
    )

    idx = _repeat(rng.poisson(0.6 * (1 - cust.mobile_share) * factor))
    channel = np.where(rng.random(idx.size) < 0.8, ATM, COUNTER)
    buf.add(
        idx,
        cal.moment(rng, t, idx),
        rng.uniform(500, 3000, idx.size).round(-2),
        OUT,
        channel,
        OWN,
    )

    idx = _repeat(rng.poisson(0.15 * factor))
    amount = rng.lognormal(np.log(0.02 * s.aum[idx] + 300), 0.6)
    moment = cal.moment(rng, t, idx)
    buf.add(idx, moment, amount * to_other_bank, OUT, MOBILE, OTHER_BANK)
    idx = _repeat(rng.poisson(0.2 * factor))
    buf.add(
        idx,
        cal.moment(rng, t, idx),
        rng.lognormal(np.log(2000), 1.0, idx.size),
        IN,
        ONLINE,
        OTHER_BANK,
    )
    idx = _repeat(rng.poisson(0.3 * factor))
    buf.add(
        idx,
        cal.moment(rng, t, idx),
        rng.lognormal(np.log(3000), 1.0, idx.size),
        IN,
        MOBILE,
        OWN,
    )


def _driver_outflows(
    rng, buf: _TxnBuffer, s: MonthState, cal: Calendar, to_other_bank: float
) -> None:
    """The money the drivers take out: to other banks during an outflow episode, else to the
    customer's own accounts elsewhere (securities, family)."""
    losing = (s.drift_loss > 100) & s.alive
    counts = np.where(losing, 1 + rng.poisson(1.5, len(losing)), 0)
    idx = _repeat(counts)
    amount = s.drift_loss[idx] / counts[idx] * rng.uniform(0.8, 1.2, idx.size)
    amount = np.where(s.outflow[idx], amount * to_other_bank, amount)
    buf.add(
        idx,
        cal.moment(rng, s.month, idx),
        amount,
        OUT,
        np.where(rng.random(idx.size) < 0.7, MOBILE, ONLINE),
        np.where(s.outflow[idx], OTHER_BANK, OWN),
    )


def _big_purchases(rng, buf: _TxnBuffer, s: MonthState, cal: Calendar) -> None:
    """One large payment, at the counter or online."""
    idx = np.flatnonzero(s.big_spend > 0)
    channel = np.where(rng.random(idx.size) < 0.5, COUNTER, ONLINE)
    buf.add(idx, cal.moment(rng, s.month, idx), s.big_spend[idx], OUT, channel, MERCHANT)


def _exit_transfers(
    rng, buf: _TxnBuffer, s: MonthState, cal: Calendar, to_other_bank: float
) -> None:
    """The exit itself: most of the money leaves for another bank in the first days."""
    leaving = s.exit_now & (s.aum_prev > s.aum)
    counts = np.where(leaving, rng.integers(1, 4, len(leaving)), 0)
    idx = _repeat(counts)
    amount = (s.aum_prev[idx] - s.aum[idx]) / counts[idx] * to_other_bank
    buf.add(idx, cal.moment(rng, s.month, idx, 0, 5), amount, OUT, MOBILE, OTHER_BANK)


def interactions_rows(rng, cust, months: list[MonthState], cal: Calendar, rm_ids, first_id: int):
    frames = []
    for s in months:
        idx = _repeat(s.contacts)
        if idx.size == 0:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": cust.customer_id[idx],
                    "rm_id": rm_ids[s.rm[idx]],
                    "ts": cal.moment(rng, s.month, idx),
                    "kind": rng.choice(KINDS, idx.size, p=KIND_P),
                    "outcome": rng.choice(OUTCOMES, idx.size, p=OUTCOME_P),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True).sort_values(["customer_id", "ts"], ignore_index=True)
    out.insert(0, "interaction_id", np.arange(first_id, first_id + len(out), dtype=np.int64))
    return out


def campaign_interactions(rng, cust, contacts, cal: Calendar, rm_ids, first_id: int):
    """The reached calls of a campaign (``(cutoff, customers, calling RM)`` per cutoff) as
    ``interactions`` rows in the month after the cutoff; ids from ``first_id`` on."""
    frames = []
    for t, who, caller in contacts:
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": cust.customer_id[who],
                    "rm_id": rm_ids[caller],
                    "ts": cal.moment(rng, t + 1, who, 0, CAMPAIGN_DAYS - 1),
                    "kind": rng.choice(CAMPAIGN_KINDS, len(who), p=CAMPAIGN_KIND_P),
                    "outcome": rng.choice(CAMPAIGN_OUTCOMES, len(who), p=CAMPAIGN_OUTCOME_P),
                }
            )
        )
    if not frames:
        return None
    out = pd.concat(frames, ignore_index=True).sort_values(["customer_id", "ts"], ignore_index=True)
    out.insert(0, "interaction_id", np.arange(first_id, first_id + len(out), dtype=np.int64))
    return out


def complaints_rows(rng, cust, months: list[MonthState], cal: Calendar, first_id: int):
    n = len(cust.customer_id)
    open_ts = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    rows: list[dict] = []
    pending: dict[int, int] = {}
    for s in months:
        for i in np.flatnonzero(s.complaint_resolved):
            if i in pending:
                resolved = cal.moment(rng, s.month, np.array([i]))[0]
                rows[pending.pop(i)]["resolved_ts"] = max(
                    resolved, open_ts[i] + np.timedelta64(1, "h")
                )
        opened = np.flatnonzero(s.complaint_opened)
        ts = cal.moment(rng, s.month, opened)
        categories = rng.choice(CATEGORIES, opened.size)
        for i, moment, category in zip(opened, ts, categories, strict=True):
            open_ts[i] = moment
            pending[i] = len(rows)
            rows.append(
                {
                    "customer_id": cust.customer_id[i],
                    "ts": moment,
                    "category": category,
                    "resolved_ts": np.datetime64("NaT", "s"),
                }
            )
    out = pd.DataFrame(rows, columns=["customer_id", "ts", "category", "resolved_ts"])
    out["customer_id"] = out["customer_id"].astype(np.int64)
    out["ts"] = out["ts"].astype("datetime64[s]")
    out["resolved_ts"] = out["resolved_ts"].astype("datetime64[s]")
    out = out.sort_values(["customer_id", "ts"], ignore_index=True)
    out.insert(0, "complaint_id", np.arange(first_id, first_id + len(out), dtype=np.int64))
    return out


def assignment_rows(rng, cust, months: list[MonthState], cal: Calendar, rm_ids) -> pd.DataFrame:
    open_date = cust.table["open_date"].to_numpy().astype("datetime64[D]")
    history = rng.integers(30, 1500, len(open_date)).astype("timedelta64[D]")
    valid_from = np.maximum(open_date, cal.month_start[0] - history)
    current: dict[int, int] = {}
    rows: list[list] = []
    for i in np.flatnonzero(cust.rm >= 0):
        current[i] = len(rows)
        rows.append([cust.customer_id[i], rm_ids[cust.rm[i]], valid_from[i], np.datetime64("NaT")])
    for s in months:
        moved = np.flatnonzero(s.reassigned)
        days = cal.moment(rng, s.month, moved).astype("datetime64[D]")
        for i, day in zip(moved, days, strict=True):
            previous = rows[current[i]]
            day = max(day, previous[2] + np.timedelta64(1, "D"))
            previous[3] = day
            current[i] = len(rows)
            rows.append([cust.customer_id[i], rm_ids[s.rm[i]], day, np.datetime64("NaT")])
    out = pd.DataFrame(rows, columns=["customer_id", "rm_id", "valid_from", "valid_to"])
    out["customer_id"] = out["customer_id"].astype(np.int64)
    for col in ("valid_from", "valid_to"):
        out[col] = out[col].astype("datetime64[s]")
    return out.sort_values(["customer_id", "valid_from"], ignore_index=True)
