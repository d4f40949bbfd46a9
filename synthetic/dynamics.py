"""Month-by-month life of a chunk of synthetic customers: drivers, AUM, exits and purchases.

Churn is caused by *drivers* that show in the data before the exit (the precursors):

| driver | what the data shows | effect on AUM |
|---|---|---|
| balance_decline | money moved to own accounts elsewhere, AUM falling | −12…−25% a month |
| outflow_other_bank | transfers to other banks | −10…−22% a month |
| salary_loss | salary credits stop | −7…−15% a month |
| complaint | an open (unresolved) complaint | −8…−16% a month |
| rm_neglect | the RM stops calling | −6…−13% a month |
| maturity | a time deposit / WM product matures next month | — |

Each driver drains money only in its first three months (at most 22% a month in all), so a
fall of 70% is always an exit, never a slow drift. The monthly exit hazard is
``sigmoid(base + tenure + wealth + Σ driver contributions + hidden)``, where ``hidden`` is a
per-customer term invisible in the data.
``churn_driver`` is the driver with the largest contribution when the exit was decided
(``none`` when no driver contributed). Every draw after the hazards is independent, so the
truth ``p_churn_3m = 1 − Π(1 − λ)`` over the next three months is the exact probability of
leaving, given the path of drivers.

The state is kept for every customer ("shadow" state) even after an exit, so the hazards a
customer *would* have faced are known: that is what the truth needs. Before their opening month
a customer does not exist: no AUM grows, no driver starts, no hazard, purchase or repayment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from features.catalog import DRIVERS
from synthetic.config import WITHDRAWN_MONTHLY_CLOSE
from synthetic.customers import CustomerChunk, sigmoid
from synthetic.products import OUT_OF_REACH, PURCHASE_OFFSET, Catalogue

# A driver's code is its position in features.catalog.DRIVERS (the truth's churn_driver
# names it from there). That order fixes the bank: the hazard sums the drivers' contributions
# and the exit's driver is the largest, the first on a tie.
DRIVER_LOG_ODDS = {  # what each driver adds to the exit hazard's log-odds at full strength
    "balance_decline": 3.6,
    "outflow_other_bank": 3.6,
    "salary_loss": 3.0,
    "complaint": 3.0,
    "rm_neglect": 2.8,
    "maturity": 2.2,
}
DECLINE, OUTFLOW, SALARY, COMPLAINT, NEGLECT, MATURITY = map(DRIVERS.index, DRIVER_LOG_ODDS)
DRIVER_WEIGHT = np.array([DRIVER_LOG_ODDS[name] for name in DRIVERS])
BASE_LOGIT = -6.1
CLOSURE_SHARE = 0.25
GROWTH_SIGMA = 0.05
JUMP_RATE = 0.01
BIG_SPEND_RATE = 0.015
EPISODE_MONTHS = 6  # money-moving episodes: 3 months of outflow, hazard in months 3–6
WARMUP_MONTHS = 12  # simulated before the window so drivers start from their steady state
DRIFT_MONTHS = 3
OUTFLOW_START = 0.014  # monthly chance that a customer starts moving savings to other banks
MAX_MONTHLY_DRIFT = np.log(0.78)


@dataclass
class MonthState:
    """What happened in one month, for the event writers (arrays over the chunk)."""

    month: int
    open: np.ndarray  # customer has opened by this month
    alive: np.ndarray  # open and not exited (exit month included as not alive)
    exit_now: np.ndarray  # this is the exit month
    closed_out: np.ndarray  # exited by closure before this month (no asset rows)
    aum: np.ndarray  # AUM as the data shows it (avg daily balance, asset products)
    aum_prev: np.ndarray
    shares: np.ndarray  # (n, products) share of AUM per asset product
    held: np.ndarray  # (n, products) held during this month
    closed: np.ndarray  # (n, products) closed during this month
    maturity: np.ndarray  # (n, products) window month index of next maturity, -1 if none
    liabilities: np.ndarray  # (n, products) loan / card balances
    drift_loss: np.ndarray  # AUM that left through drivers this month
    big_spend: np.ndarray  # AUM spent on a big purchase this month (no churn)
    outflow: np.ndarray  # outflow episode active
    salary_paid: np.ndarray
    contacts: np.ndarray  # RM contacts this month
    rm: np.ndarray
    reassigned: np.ndarray
    complaint_opened: np.ndarray
    complaint_resolved: np.ndarray
    any_driver: np.ndarray


@dataclass
class Simulation:
    """Hazards and outcomes over all simulated months (window + 3 for the truth)."""

    hazard: np.ndarray  # (n, T) monthly exit hazard decided at t (exit in t + 1)
    purchase: np.ndarray  # (n, T, products) monthly purchase hazard decided at t
    driver_drift: np.ndarray  # (n, T) log AUM change from drivers in month t
    log_aum: np.ndarray  # (n, T) shadow log AUM
    exit_month: np.ndarray  # month index of exit, large if none
    exit_driver: np.ndarray  # driver index at the exit decision, -1 none
    months: list[MonthState] = field(default_factory=list)
    hidden_var_sums: np.ndarray = field(default_factory=lambda: np.zeros(5))


@dataclass(frozen=True, eq=False)
class Shift:
    """A regime change as the simulation applies it (``synthetic.config.RegimeChange``), from
    window month ``month`` on: ``withdrawn`` (a mask over the catalogue) are sold no more — a
    maturing one is not rolled over, a loan runs its course, any other is closed by
    ``WITHDRAWN_MONTHLY_CLOSE`` of its holders a month; outflow episodes (savings moved to
    other banks) start ``outflow_start_factor`` times as often."""

    withdrawn: np.ndarray
    month: int = 0
    outflow_start_factor: float = 1.0


class Calls(Protocol):
    """What the simulation asks of a campaign (``synthetic.campaign.ChunkCampaign``)."""

    def month(self, t: int, state: dict[str, np.ndarray], hazard: np.ndarray) -> np.ndarray:
        """The realised exit hazards of month ``t``, given the month's state."""


def _ramp(months_on: np.ndarray) -> np.ndarray:
    """Weight of a driver by months on: nothing for two months, full for months 3–6, 0.4 after.

    The lag makes the truth reachable: an exit decided up to two months after a cutoff only
    follows drivers that had already started — and shown in the data — by the cutoff.
    """
    return np.where(months_on >= 3, 1.0, 0.0) * np.where(months_on > 6, 0.4, 1.0)


def _episode(rng, on, months_on, driver, can_start, p_start, p_end, length=None) -> None:
    """Advance one driver's on/off episodes in place: start with p_start, end with p_end, or
    after exactly ``length`` months when given (then the data shows when it started)."""
    active = on[:, driver]
    start = can_start & ~active & (rng.random(len(active)) < p_start)
    end = active & (rng.random(len(active)) < p_end)
    if length is not None:
        end |= active & (months_on[:, driver] >= length)
    on[:, driver] = (active | start) & ~end
    months_on[:, driver] = np.where(on[:, driver], months_on[:, driver] + 1, 0)


def simulate(
    rng: np.random.Generator,
    cust: CustomerChunk,
    n_window: int,
    rms_by_outlet: tuple[np.ndarray, ...],
    catalogue: Catalogue,
    warmup: int = WARMUP_MONTHS,
    shift: Shift | None = None,
    campaign: Calls | None = None,
) -> Simulation:
    """Simulate a chunk, under a regime change from ``shift.month`` on when given. The number
    of random draws does not depend on the regime, so every month before it is the unchanged
    bank's. ``campaign`` (``synthetic.campaign``) records each month's response types and
    calls, and its calls change the realised exits; it draws from its own stream."""
    n = len(cust.customer_id)
    n_products = len(catalogue)
    shift = shift or Shift(np.zeros(n_products, dtype=bool))
    withdrawn, regime_month = shift.withdrawn, shift.month
    runs_off = withdrawn & ~catalogue.amortises
    for p in catalogue.maturing:
        runs_off[p] = False  # closes at its next maturity instead
    demand, maturing = catalogue.demand, catalogue.maturing
    total = n_window + 3
    log10w0 = np.log10(cust.wealth)
    shape = catalogue.propensity_logits(log10w0, cust.age, cust.risk)
    held = rng.random((n, n_products)) < sigmoid(shape)
    held[:, demand] = True
    weights = catalogue.share_weight * rng.lognormal(0, 0.3, (n, n_products))
    maturity = np.full((n, n_products), -1)
    # deposits of a customer there before the warm-up were bought at any time; one who opens
    # later buys them on opening, so they run their full term from it
    opens_later = cust.open_month > -warmup
    for p in maturing:
        terms = catalogue.draw_terms(rng, p, n)
        first = np.where(opens_later, cust.open_month + terms, rng.integers(0, terms) - warmup)
        maturity[:, p] = np.where(held[:, p], first, -1)
    term_of = {p: catalogue.draw_terms(rng, p, n) for p in maturing}
    liabilities = np.zeros((n, n_products))
    for p, (low, high) in catalogue.balance_ranges.items():
        liabilities[:, p] = rng.uniform(low, high, n)

    log_aum = np.log(cust.wealth)
    drivers_on = np.zeros((n, len(DRIVERS)), dtype=bool)
    drivers_months = np.zeros((n, len(DRIVERS)), dtype=int)
    since_resolved = np.full(n, 99)
    contacted_last = np.zeros(n, dtype=bool)
    rm = cust.rm.copy()
    exit_month = np.full(n, 10_000)
    exit_driver = np.full(n, -1)
    closure = rng.random(n) < CLOSURE_SHARE
    residual = rng.uniform(0.005, 0.06, n)
    exit_keep = rng.uniform(0.02, 0.12, n)
    aum_after_exit = np.zeros(n)
    sim = Simulation(
        hazard=np.zeros((n, total)),
        purchase=np.zeros((n, total, n_products)),
        driver_drift=np.zeros((n, total)),
        log_aum=np.zeros((n, total)),
        exit_month=exit_month,
        exit_driver=exit_driver,
    )
    prev_aum = np.exp(log_aum)
    open_complaint_seen = np.zeros(n, dtype=bool)  # the open complaint was written to the data

    for t in range(-warmup, total):
        if t == 0:  # complaints are not carried over from the warm-up: the data starts here
            drivers_on[:, COMPLAINT] = False
            drivers_months[:, COMPLAINT] = 0
            since_resolved[:] = 99
        # withdrawn products: no rollover or run-off from the regime month; no purchase decided
        # from the month before (a purchase decided at t is held from t + 1)
        withdrawn_now = withdrawn & (t >= regime_month)
        not_sold = withdrawn & (t >= regime_month - 1)
        if withdrawn_now.any():  # a customer who joins from the regime month cannot get one
            held[:, withdrawn_now] &= (cust.open_month < regime_month)[:, None]
        is_open = cust.open_month <= t
        alive = is_open & (exit_month > t)
        exit_now = exit_month == t
        tenure = t - cust.open_month

        # drivers: episodes that start and end at random, visible in the data while on
        young = tenure < 24
        _episode(
            rng,
            drivers_on,
            drivers_months,
            DECLINE,
            is_open,
            np.where(young, 0.024, 0.016),
            0.0,
            EPISODE_MONTHS,
        )
        outflow_start = OUTFLOW_START * (shift.outflow_start_factor if t >= regime_month else 1)
        start_rate = min(outflow_start, 1.0)
        _episode(rng, drivers_on, drivers_months, OUTFLOW, is_open, start_rate, 0.0, EPISODE_MONTHS)
        _episode(rng, drivers_on, drivers_months, SALARY, is_open & cust.salaried, 0.007, 0.04)
        other = drivers_on[:, [DECLINE, OUTFLOW, SALARY, NEGLECT]].any(axis=1)
        was_open_complaint = drivers_on[:, COMPLAINT].copy()
        _episode(
            rng, drivers_on, drivers_months, COMPLAINT, is_open, np.where(other, 0.018, 0.008), 0.45
        )
        complaint_opened = drivers_on[:, COMPLAINT] & ~was_open_complaint
        complaint_resolved = was_open_complaint & ~drivers_on[:, COMPLAINT]
        since_resolved = np.where(complaint_resolved, 0, since_resolved + 1)
        reassigned = alive & (rm >= 0) & (t >= 0) & (rng.random(n) < 0.008)
        for i in np.flatnonzero(reassigned):
            choices = rms_by_outlet[cust.outlet[i]]
            if len(choices) > 1:
                rm[i] = rng.choice(choices[choices != rm[i]])
        neglect_start = np.where(reassigned, 0.3, 0.013)
        _episode(rng, drivers_on, drivers_months, NEGLECT, is_open & (rm >= 0), neglect_start, 0.10)

        # AUM: trend + noise + rare windfalls, minus what drivers take out
        # each driver takes money out in its first DRIFT_MONTHS months only, and never more
        # than MAX_MONTHLY_DRIFT a month in all: a 70% fall is an exit, never a slow drift
        fresh = (drivers_months >= 1) & (drivers_months <= DRIFT_MONTHS)
        drift = np.zeros(n)
        drift += np.where(fresh[:, DECLINE], np.log(rng.uniform(0.72, 0.86, n)), 0)
        drift += np.where(fresh[:, OUTFLOW], np.log(rng.uniform(0.75, 0.88, n)), 0)
        drift += np.where(fresh[:, SALARY], np.log(rng.uniform(0.85, 0.93, n)), 0)
        drift += np.where(fresh[:, COMPLAINT], np.log(rng.uniform(0.84, 0.92, n)), 0)
        drift += np.where(fresh[:, NEGLECT], np.log(rng.uniform(0.87, 0.94, n)), 0)
        drift = np.maximum(drift, MAX_MONTHLY_DRIFT)
        jump = np.where(is_open & (rng.random(n) < JUMP_RATE), np.log(rng.uniform(1.5, 2.5, n)), 0)
        # a big purchase (a flat, a car, school fees): money leaves, the customer stays
        spend = np.where(
            is_open & (rng.random(n) < BIG_SPEND_RATE), np.log(rng.uniform(0.5, 0.8, n)), 0
        )
        if t > -warmup:  # AUM moves from ``wealth`` only once the customer has opened
            trend = np.where(is_open, cust.growth + GROWTH_SIGMA * rng.standard_normal(n), 0.0)
            log_aum = log_aum + trend + jump + drift + spend
        if t >= 0:
            sim.driver_drift[:, t] = drift + spend
            sim.log_aum[:, t] = log_aum
        shadow_aum = np.exp(log_aum)

        # maturities: roll over (85%) or move the money to demand deposits
        closed = np.zeros((n, n_products), dtype=bool)
        for p in maturing:
            due = alive & held[:, p] & (maturity[:, p] == t)
            roll = due & (rng.random(n) < 0.85) & ~withdrawn_now[p]
            maturity[:, p] = np.where(roll, t + term_of[p], maturity[:, p])
            stop = due & ~roll
            closed[:, p] |= stop
        # ordinary product closures
        monthly_close = np.where(
            runs_off & withdrawn_now,
            np.maximum(catalogue.monthly_close, WITHDRAWN_MONTHLY_CLOSE),
            catalogue.monthly_close,
        )
        stop = alive[:, None] & held & (rng.random((n, n_products)) < monthly_close)
        closed |= stop

        # exit month: money leaves early in the month; closures shut every asset account
        if exit_now.any():
            aum_after_exit[exit_now] = prev_aum[exit_now] * residual[exit_now]
            # loans are still owed; the demand account closes only with a closure
            shut = exit_now[:, None] & held & catalogue.closes_on_exit[None, :]
            shut[:, demand] &= closure
            closed |= shut
        data_aum = np.where(
            alive,
            shadow_aum,
            np.where(exit_now, prev_aum * exit_keep, np.where(closure, 0.0, aum_after_exit)),
        )
        data_aum = np.where(is_open, data_aum, 0.0)

        asset_held = held & catalogue.asset[None, :]
        w = np.where(asset_held, weights, 0)
        shares = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        contacts = np.where(
            alive & (rm >= 0),
            rng.poisson(np.where(drivers_on[:, NEGLECT], 0.03, cust.contact_rate)),
            0,
        )

        # hazards decided this month: exit in t + 1, purchases in t + 1
        maturing_share = np.zeros(n)
        for p in maturing:
            maturing_share += np.where(held[:, p] & (maturity[:, p] == t + 1), shares[:, p], 0)
        contrib = np.zeros((n, len(DRIVERS)))
        for d in (DECLINE, OUTFLOW, SALARY, NEGLECT):
            contrib[:, d] = DRIVER_WEIGHT[d] * _ramp(drivers_months[:, d])
        contrib[:, COMPLAINT] = DRIVER_WEIGHT[COMPLAINT] * np.where(
            drivers_on[:, COMPLAINT] & (drivers_months[:, COMPLAINT] >= 2),
            1.0,
            np.where(since_resolved <= 2, 0.4, 0.0),
        )
        contrib[:, MATURITY] = DRIVER_WEIGHT[MATURITY] * maturing_share
        observable = (
            BASE_LOGIT
            + 0.6 * (tenure < 12)
            - 0.15 * (log_aum / np.log(10) - 4.5)
            + contrib.sum(axis=1)
        )
        logit = observable + cust.hidden_churn
        hazard = np.where(is_open, sigmoid(logit), 0.0)
        wealthy = alive & (shadow_aum >= 10_000) & (tenure >= 3) & (t >= 0)
        if t >= 0:
            sim.hazard[:, t] = hazard
        if wealthy.any():
            sums = sim.hidden_var_sums
            sums[0] += wealthy.sum()
            sums[1] += cust.hidden_churn[wealthy].sum()
            sums[2] += (cust.hidden_churn[wealthy] ** 2).sum()
            sums[3] += logit[wealthy].sum()
            sums[4] += (logit[wealthy] ** 2).sum()

        n_held = held.sum(axis=1)
        buy_logit = (
            catalogue.propensity_logits(log_aum / np.log(10), cust.age, cust.risk)
            + PURCHASE_OFFSET
            + 0.18 * (n_held - 2)[:, None]
            + 1.1 * contacted_last[:, None]
            + cust.hidden_buy[:, None]
        )
        buy_logit += catalogue.purchase_boost  # a premium service: crossing the threshold
        buy_logit[:, demand] = -30
        buy_logit[:, not_sold] = OUT_OF_REACH
        if t >= 0:
            sim.purchase[:, t] = np.where(is_open[:, None], sigmoid(buy_logit), 0.0)

        if 0 <= t < n_window:
            sim.months.append(
                MonthState(
                    month=t,
                    open=is_open,
                    alive=alive,
                    exit_now=exit_now,
                    closed_out=(exit_month < t) & closure,
                    aum=data_aum,
                    aum_prev=prev_aum,
                    shares=shares,
                    held=held.copy(),
                    closed=closed,
                    maturity=maturity.copy(),
                    liabilities=liabilities.copy(),
                    drift_loss=np.where(alive, shadow_aum * (1 - np.exp(drift)), 0),
                    big_spend=np.where(alive, shadow_aum * (np.exp(-spend) - 1), 0),
                    outflow=drivers_on[:, OUTFLOW].copy(),
                    salary_paid=alive & cust.salaried & ~drivers_on[:, SALARY],
                    contacts=contacts,
                    rm=rm.copy(),
                    reassigned=reassigned,
                    complaint_opened=complaint_opened & alive,
                    complaint_resolved=complaint_resolved & open_complaint_seen,
                    any_driver=drivers_on.any(axis=1),
                )
            )

        # outcomes for next month: exits first, then purchases among those who stay; a
        # campaign's call changes the hazard the (unchanged) draw is compared with
        realised = hazard
        if campaign is not None and t >= 0:
            state = {"alive": alive, "tenure": tenure, "rm": rm, "drivers_on": drivers_on,
                     "drivers_months": drivers_months, "held": held, "maturity": maturity,
                     "aum": data_aum}  # fmt: skip
            realised = campaign.month(t, state, hazard)
        leaving = alive & (rng.random(n) < realised)
        exit_month[leaving] = t + 1
        top = contrib[leaving].argmax(axis=1)
        exit_driver[leaving] = np.where(contrib[leaving].max(axis=1) > 0.3, top, -1)
        buy_hazard = np.where(is_open[:, None], sigmoid(buy_logit), 0.0)
        buys = (alive & ~leaving)[:, None] & ~held & (rng.random((n, n_products)) < buy_hazard)
        buys[:, not_sold] = False
        held = (held & ~closed) | buys
        for p in maturing:
            maturity[:, p] = np.where(buys[:, p], t + 1 + term_of[p], maturity[:, p])
            maturity[:, p] = np.where(held[:, p], maturity[:, p], -1)
        for p, factor in catalogue.balance_factors.items():
            if factor is None:
                liabilities[:, p] = rng.uniform(*catalogue.balance_ranges[p], n)
            else:  # repaid from the opening month on
                liabilities[:, p] *= np.where(is_open, factor, 1.0)
        contacted_last = contacts > 0
        prev_aum = np.where(alive, shadow_aum, data_aum)
        open_complaint_seen = np.where(complaint_opened, alive, open_complaint_seen)
    return sim
