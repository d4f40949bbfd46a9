"""Ranked retention lists, one per RM as of the cutoff (DESIGN §5, §8).

Pure pandas over the scored frame. Each list holds the RM's eligible customers, never a
``do_not_contact`` one, ranked by ``expected_loss = p_churn × contribution_12m`` and cut at
the RM's capacity. Customers without an RM go to their outlet's list (``outlet_<id>``), cut at
the median RM capacity of the bank. The next best offer is the product not held at the cutoff
with the highest ``propensity × product value``; the action comes from a small rule table, and
a customer with an open complaint gets no offer at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import Product

RESOLVE_COMPLAINT = "resolve_complaint_first"
OFFER_RENEWAL = "offer_renewal"
RETENTION_CALL = "retention_call"
LIST_COLUMNS = (
    "rank", "customer_id", "customer_name", "tier", "pyramid_level", "p_churn",
    "contribution_12m", "expected_loss", "reason_1", "reason_2", "reason_3",
    "next_best_offer", "offer_propensity", "action",
)  # fmt: skip
OUTLET_PREFIX = "outlet_"
DEFAULT_CAPACITY = 200  # for outlet lists when the bank has no RM capacities at all


def mask_name(name: object) -> str:
    """The first character of each word, stars for the rest: "张伟" → "张*", "Ann" → "A**"."""
    if not isinstance(name, str) or not name:
        return "***"
    return " ".join(w[0] + "*" * max(len(w) - 1, 1) for w in name.split())


def product_values(products: tuple[Product, ...], features: pd.DataFrame) -> dict[str, float]:
    """What one holder of each product brings a year: its fee plus its margin on the median
    balance of the customers who hold it at the cutoff (``holds_<product>``)."""
    values = {}
    for p in products:
        column, holds = f"balance_{p.product}", f"holds_{p.product}"
        held = (
            features.loc[features[holds].fillna(False).astype(bool), column]
            if column in features and holds in features
            else pd.Series([], dtype="float64")
        )
        typical = float(held.median()) if len(held) else 0.0
        values[p.product] = p.fee_per_year + p.margin_rate * typical
    return values


def next_best_offer(
    frame: pd.DataFrame, held: pd.DataFrame, values: dict[str, float]
) -> tuple[pd.Series, pd.Series]:
    """The offer with the highest propensity × value among products not held, and its propensity.

    ``frame`` has ``propensity_<product>`` columns; ``held`` is a boolean frame (same index,
    one column per product). Customers with an open complaint, or with nothing to offer, get
    None.
    """
    products = [p for p in values if f"propensity_{p}" in frame and p in held]
    if not products:
        return pd.Series(None, index=frame.index, dtype=object), pd.Series(np.nan, frame.index)
    propensity = frame[[f"propensity_{p}" for p in products]].to_numpy(dtype=np.float64)
    worth = propensity * np.array([values[p] for p in products])
    offerable = ~held[products].to_numpy(dtype=bool) & np.isfinite(worth) & (worth > 0)
    offerable &= ~(frame["open_complaints"].fillna(0).to_numpy() > 0)[:, None]
    worth = np.where(offerable, worth, -np.inf)
    best = np.argmax(worth, axis=1)
    has = offerable.any(axis=1)
    names = np.where(has, np.array(products, dtype=object)[best], None)
    chosen = np.where(has, propensity[np.arange(len(frame)), best], np.nan)
    return pd.Series(names, index=frame.index, dtype=object), pd.Series(chosen, frame.index)


def actions(frame: pd.DataFrame) -> pd.Series:
    """Open complaint first; then money maturing within 30 days (any product); else a call."""
    complaint = frame["open_complaints"].fillna(0) > 0
    maturing = frame["maturing_30d"].fillna(0) > 0
    otherwise = np.where(maturing, OFFER_RENEWAL, RETENTION_CALL)
    action = np.where(complaint, RESOLVE_COMPLAINT, otherwise)
    return pd.Series(action, index=frame.index, dtype=object)


def list_owner(frame: pd.DataFrame) -> pd.Series:
    """The RM as of the cutoff, or ``outlet_<id>`` for customers nobody looks after."""
    outlet = OUTLET_PREFIX + frame["outlet_id"].astype("string")
    return frame["rm_id"].astype("string").fillna(outlet).astype(object)


def capacities(rms: pd.DataFrame, owners: pd.Series, k: int | None) -> dict[str, int]:
    """Capacity per list owner: ``k`` if given, else the RM's capacity; outlets get the median."""
    by_rm = dict(zip(rms["rm_id"].astype(str), rms["capacity"].astype(int), strict=True))
    outlet_capacity = int(np.median(list(by_rm.values()))) if by_rm else DEFAULT_CAPACITY
    return {
        owner: k if k is not None else by_rm.get(owner, outlet_capacity)
        for owner in owners.unique()
    }


def build_lists(scored: pd.DataFrame, rms: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
    """Every list in one frame: ``list_id`` plus :data:`LIST_COLUMNS` (reasons as already
    rendered in ``reason_1..3``), ranked within each list.

    ``scored`` needs customer_id, rm_id, outlet_id, eligible_churn, do_not_contact, p_churn,
    contribution_12m, customer_name, tier, pyramid_level, reason_1..3, next_best_offer,
    offer_propensity and action.
    """
    frame = scored[scored["eligible_churn"].fillna(False).astype(bool)]
    frame = frame[~frame["do_not_contact"].fillna(True).astype(bool)].copy()
    frame["expected_loss"] = frame["p_churn"] * frame["contribution_12m"].clip(lower=0)
    frame["list_id"] = list_owner(frame)
    frame = frame.sort_values(
        ["list_id", "expected_loss", "customer_id"], ascending=[True, False, True]
    )
    frame["rank"] = frame.groupby("list_id", sort=False).cumcount() + 1
    cap = capacities(rms, frame["list_id"], k)
    frame = frame[frame["rank"] <= frame["list_id"].map(cap)]
    return frame[["list_id", *LIST_COLUMNS]].reset_index(drop=True)
