"""What to offer: retention rows keep money at the bank, growth rows add value (docs/design.md §12).

- A **retention** offer is the renewal of the product maturing within 30 days (with its amount
  and date) when there is one, else the product of a retention kind (assets, by default) the
  customer does not hold with the highest propensity × value. Never a loan or a card to a
  customer at risk.
- A **growth** offer is, for a customer not at risk, the best of: moving up a tier (p_upgrade ×
  the contribution the next tier brings over this one) and each product of a growth kind not
  held (propensity × the product's value).
- A product (not a renewal, not a tier) is offered only to a customer at least
  ``[offers] min_lift`` times as likely to take it as the month's average customer: a
  product at a 0.7% chance, where the average customer's is 2%, is no offer — the call is
  then about the money, with no product to push.
- An open complaint means no offer at all.

Pure functions over the scored frame; the action that goes with each row is chosen here too,
so an offer can never contradict its action.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.config import BankConfig, Product

RESOLVE_COMPLAINT = "resolve_complaint_first"
ASSETS_LEAVING = "assets_leaving_call_today"
OFFER_RENEWAL = "offer_renewal"
RETENTION_CALL = "retention_call"
UPGRADE = "tier_upgrade"
OFFER_PRODUCT = "offer_product"
TALK_UPGRADE = "upgrade_conversation"


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


@dataclass(frozen=True)
class Basis:
    """What an offer compares a customer with, taken from the month's whole bank: what one
    holder of each product brings (:func:`product_values`), each product's mean propensity
    and each tier's median contribution (:func:`upgrade_gain`)."""

    values: dict[str, float]
    usual: dict[str, float]
    tier_median: pd.Series


def basis_of(frame: pd.DataFrame, values: dict[str, float]) -> Basis:
    """The :class:`Basis` of ``frame``'s customers: every ``propensity_<product>``'s mean over
    the customers it is known for (0 when none), the median contribution per tier."""
    usual = {}
    for column in [c for c in frame.columns if c.startswith("propensity_")]:
        propensity = frame[column].to_numpy(dtype=np.float64)
        known = np.isfinite(propensity)
        usual[column.removeprefix("propensity_")] = float(
            np.where(known, propensity, 0).sum() / max(int(known.sum()), 1)
        )
    median = frame.groupby("tier")["contribution_12m"].median()
    return Basis(dict(values), usual, median)


def _best_product(
    frame, held, basis: Basis, products, min_lift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(product or None, its propensity, propensity × value) per row among ``products`` not
    held, whose propensity is at least ``min_lift`` × the product's mean over the bank."""
    values = basis.values
    products = [p for p in products if f"propensity_{p}" in frame and p in held and p in values]
    n = len(frame)
    if not products:
        return np.full(n, None, dtype=object), np.full(n, np.nan), np.full(n, -np.inf)
    propensity = frame[[f"propensity_{p}" for p in products]].to_numpy(dtype=np.float64)
    worth = propensity * np.array([values[p] for p in products])
    usual = np.array([basis.usual.get(p, 0.0) for p in products])
    likely = propensity >= min_lift * usual
    offerable = ~held[products].to_numpy(dtype=bool) & np.isfinite(worth) & (worth > 0) & likely
    worth = np.where(offerable, worth, -np.inf)
    best = np.argmax(worth, axis=1)
    has = offerable.any(axis=1)
    rows = np.arange(n)
    names = np.where(has, np.array(products, dtype=object)[best], None)
    return names, np.where(has, propensity[rows, best], np.nan), worth[rows, best]


def retention_offers(
    frame: pd.DataFrame,
    held: pd.DataFrame,
    values: dict[str, float],
    config: BankConfig,
    basis: Basis | None = None,
) -> pd.DataFrame:
    """Offer, propensity, amount, date and action of each row as a retention row, against
    ``basis`` (the bank's; default: ``frame``'s own with ``values``)."""
    basis = basis or basis_of(frame, values)
    kinds = set(config.offers.retention_kinds)
    keep = [p.product for p in config.products if p.kind in kinds]
    product, propensity, _ = _best_product(frame, held, basis, keep, config.offers.min_lift)
    complaint = frame["open_complaints"].fillna(0).to_numpy() > 0
    maturing = frame["maturing_product"].where(frame["maturing_product"].notna(), None)
    renew = maturing.notna().to_numpy() & (frame["maturing_30d"].fillna(0).to_numpy() > 0)
    offer = np.where(renew, maturing.to_numpy(dtype=object), product)
    offer = np.where(complaint, None, offer)
    renewal_propensity = np.full(len(frame), np.nan)
    out = pd.DataFrame(
        {
            "next_best_offer": offer,
            "offer_propensity": np.where(renew | complaint, renewal_propensity, propensity),
            "offer_amount": np.where(renew & ~complaint, frame["maturing_30d"], np.nan),
            "offer_date": frame["maturing_date"].where(renew & ~complaint),
        },
        index=frame.index,
    )
    leaving = frame["leaving_now"].fillna(False).to_numpy(dtype=bool)
    action = np.where(renew, OFFER_RENEWAL, RETENTION_CALL)
    action = np.where(leaving, ASSETS_LEAVING, action)
    out["action"] = np.where(complaint, RESOLVE_COMPLAINT, action)
    return out


def upgrade_gain(
    frame: pd.DataFrame, config: BankConfig, median: pd.Series | None = None
) -> np.ndarray:
    """The contribution a customer gains by moving up one tier: the median contribution of the
    next tier's customers minus this tier's (0 at the top); ``median``: per tier, the bank's
    (default: ``frame``'s)."""
    names = list(config.tiers.names)
    if median is None:
        median = frame.groupby("tier")["contribution_12m"].median()
    next_tier = dict(zip(names[:-1], names[1:], strict=True))
    following = frame["tier"].map(next_tier).map(median).to_numpy(dtype=np.float64)
    gain = following - frame["tier"].map(median).to_numpy(dtype=np.float64)
    return np.clip(np.nan_to_num(gain), 0, None)


def growth_offers(
    frame: pd.DataFrame,
    held: pd.DataFrame,
    values: dict[str, float],
    config: BankConfig,
    basis: Basis | None = None,
) -> pd.DataFrame:
    """Offer, propensity, value added and action of each row as a growth row, against
    ``basis`` (the bank's; default: ``frame``'s own with ``values``)."""
    basis = basis or basis_of(frame, values)
    kinds = set(config.offers.growth_kinds)
    keep = [p.product for p in config.products if p.kind in kinds]
    product, propensity, worth = _best_product(frame, held, basis, keep, config.offers.min_lift)
    gain = upgrade_gain(frame, config, basis.tier_median)
    upgrade_worth = frame["p_upgrade"].to_numpy(dtype=np.float64) * gain
    upgrade = upgrade_worth > np.maximum(worth, 0)
    complaint = frame["open_complaints"].fillna(0).to_numpy() > 0
    offer = np.where(upgrade, UPGRADE, product)
    none = complaint | pd.isna(offer)  # nothing to offer: no propensity, no product action
    value = np.where(upgrade, upgrade_worth, np.maximum(worth, 0))
    action = np.where(upgrade, TALK_UPGRADE, OFFER_PRODUCT).astype(object)
    action[pd.isna(offer)] = None
    return pd.DataFrame(
        {
            "growth_offer": np.where(complaint, None, offer),
            "offer_propensity": np.where(
                none, np.nan, np.where(upgrade, frame["p_upgrade"], propensity)
            ),
            "value_added": np.where(complaint, 0.0, value),
            "action": np.where(complaint, RESOLVE_COMPLAINT, action),
        },
        index=frame.index,
    )
