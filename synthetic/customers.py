"""Static attributes of one chunk of synthetic customers: who they are, where, how wealthy.

Wealth is lognormal (σ = 1.8 in log space, richer in first-tier cities and with age) with a
Pareto tail for the richest ~1%, which puts ≥ 70% of AUM with the top 20% of customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic.org import Org, random_names

OCCUPATIONS = (
    "salaried",
    "civil_servant",
    "professional",
    "self_employed",
    "business_owner",
    "other",
)
OCCUPATION_P = (0.48, 0.10, 0.15, 0.13, 0.08, 0.06)
SALARIED = frozenset({"salaried", "civil_servant", "professional"})
EDUCATION = ("high_school", "associate", "bachelor", "master", "doctorate")
EDUCATION_P = (0.30, 0.25, 0.32, 0.11, 0.02)
CITY_TIER_WEALTH = {1: 1.6, 2: 1.1, 3: 0.8, 4: 0.6}
MEDIAN_WEALTH = 12_000.0
WEALTH_SIGMA = 1.8
PARETO_SHARE = 0.012
PARETO_SCALE = 1_000_000.0
PARETO_ALPHA = 1.3
ACTIVITY_MEDIAN = 3.0  # card payments a month: lognormal, so a share's threshold is exact
ACTIVITY_SIGMA = 0.6


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class CustomerChunk:
    """Arrays, one entry per customer of the chunk."""

    customer_id: np.ndarray
    outlet: np.ndarray  # outlet index
    age: np.ndarray  # years at the end of the window
    risk: np.ndarray  # 1..5
    salaried: np.ndarray
    salary: np.ndarray
    open_month: np.ndarray  # window month index of opening; negative = before the window
    open_day: np.ndarray  # day of the opening month the account opened on, 0-based
    wealth: np.ndarray  # AUM level at the start of the warm-up, or at opening if later
    growth: np.ndarray  # monthly log-growth trend
    activity: np.ndarray  # merchant transactions per month
    mobile_share: np.ndarray
    contact_rate: np.ndarray  # RM contacts per month when looked after
    assigned: np.ndarray
    rm: np.ndarray  # RM row index, -1 when no RM
    hidden_churn: np.ndarray
    hidden_buy: np.ndarray
    table: pd.DataFrame  # the customers table rows


def draw_customers(
    rng: np.random.Generator,
    first_id: int,
    n: int,
    org: Org,
    months: pd.DatetimeIndex,
    hidden_sigma: float,
) -> CustomerChunk:
    """``n`` customers with ids from ``first_id``. The steps draw in this order: reordering
    them (or the draws inside them) changes the bank."""
    outlet = rng.choice(len(org.outlet_weights), n, p=org.outlet_weights)
    age = np.clip(rng.normal(44, 14, n), 18, 88)
    risk = np.clip(np.rint(3 - (age - 44) / 22 + rng.normal(0, 0.9, n)), 1, 5).astype(np.int8)
    occupation, salaried, salary = _occupations(rng, age)
    wealth = _wealth(rng, age, org.outlet_city_tier[outlet])
    birth, open_date, open_month, open_day = _opening(rng, age, months)
    assigned, rm = _relationship_managers(rng, outlet, wealth, org)
    table = pd.DataFrame(
        {
            "customer_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "name": random_names(rng, n),
            "birth_date": birth,
            "gender": rng.choice(np.array(["F", "M"], dtype=object), n),
            "occupation": occupation,
            "education": rng.choice(np.array(EDUCATION, dtype=object), n, p=EDUCATION_P),
            "city": org.outlet_city[outlet],
            "outlet_id": org.org["outlet_id"].to_numpy()[outlet],
            "open_date": open_date,
            "risk_profile": np.char.add("C", risk.astype(str)).astype(object),
            "do_not_contact": rng.random(n) < 0.03,
        }
    )
    return CustomerChunk(
        customer_id=table["customer_id"].to_numpy(),
        outlet=outlet,
        age=age,
        risk=risk,
        salaried=salaried,
        salary=salary,
        open_month=open_month,
        open_day=open_day,
        wealth=wealth,
        growth=rng.normal(0.008, 0.006, n),
        activity=rng.lognormal(np.log(ACTIVITY_MEDIAN), ACTIVITY_SIGMA, n),
        mobile_share=sigmoid(1.5 - 0.06 * (age - 35) + rng.normal(0, 0.7, n)),
        contact_rate=np.where(wealth >= 300_000, 1.2, np.where(wealth >= 50_000, 0.8, 0.5)),
        assigned=assigned,
        rm=rm,
        hidden_churn=rng.normal(0, hidden_sigma, n),
        hidden_buy=rng.normal(0, 0.3, n),
        table=table,
    )


def _occupations(rng: np.random.Generator, age: np.ndarray) -> tuple[np.ndarray, ...]:
    """Occupation (retired from 62, often a student under 23), salaried or not, and salary."""
    n = len(age)
    occupation = rng.choice(np.array(OCCUPATIONS, dtype=object), n, p=OCCUPATION_P)
    occupation = np.where(age >= 62, "retired", occupation)
    occupation = np.where((age < 23) & (rng.random(n) < 0.6), "student", occupation)
    salaried = np.isin(occupation, list(SALARIED))
    salary = np.where(salaried, rng.lognormal(np.log(9_000), 0.5, n), 0.0)
    return occupation, salaried, salary


def _wealth(rng: np.random.Generator, age: np.ndarray, city_tier: np.ndarray) -> np.ndarray:
    """Lognormal wealth, richer with age and in first-tier cities, with a Pareto tail."""
    n = len(age)
    tier_mult = np.vectorize(CITY_TIER_WEALTH.get)(city_tier)
    log_wealth = np.log(MEDIAN_WEALTH) + WEALTH_SIGMA * rng.standard_normal(n) + 0.015 * (age - 44)
    wealth = np.exp(log_wealth) * tier_mult
    tail = rng.random(n) < PARETO_SHARE
    wealth[tail] = np.minimum(PARETO_SCALE * (1 + rng.pareto(PARETO_ALPHA, tail.sum())), 3e8)
    return np.maximum(wealth, 50.0)


def _opening(
    rng: np.random.Generator, age: np.ndarray, months: pd.DatetimeIndex
) -> tuple[np.ndarray, ...]:
    """Birth date, open date, and the window month (negative: before it) and day of the
    month each customer opened on."""
    n = len(age)
    # ~12% opened during the window; the rest have 3 months to 30 years of history
    new = rng.random(n) < 0.12
    open_month = np.where(
        new,
        rng.integers(0, len(months), n),
        -np.minimum(3 + rng.exponential(70, n), 360).astype(int),
    )
    open_date = (months[0] + pd.offsets.MonthBegin(-1)).to_numpy().astype("datetime64[D]")
    open_date = (open_date.astype("datetime64[M]") + open_month.astype("timedelta64[M]")).astype(
        "datetime64[D]"
    ) + rng.integers(0, 28, n).astype("timedelta64[D]")
    birth = months[-1].to_numpy().astype("datetime64[D]") - (age * 365.25).astype("timedelta64[D]")
    open_date = np.maximum(open_date, birth + np.timedelta64(18 * 365, "D"))
    # nobody opens before turning 18, so a young customer's opening moves later: the month the
    # simulation starts them in must follow it, or they live (and bank) before they exist
    opening_month = open_date.astype("datetime64[M]")
    open_month = (opening_month - months[0].to_numpy().astype("datetime64[M]")).astype(int)
    open_day = (open_date - opening_month.astype("datetime64[D]")).astype(int)
    return birth, open_date, open_month, open_day


def _relationship_managers(
    rng: np.random.Generator, outlet: np.ndarray, wealth: np.ndarray, org: Org
) -> tuple[np.ndarray, np.ndarray]:
    """Who is looked after (likelier the wealthier) and by which RM of their outlet (-1: none)."""
    assigned = rng.random(len(outlet)) < sigmoid(2.2 * (np.log10(wealth) - 4.7))
    rm = np.full(len(outlet), -1)
    for o in np.unique(outlet[assigned]):
        members = np.flatnonzero(assigned & (outlet == o))
        rm[members] = rng.choice(org.rms_by_outlet[o], len(members))
    return assigned, rm
