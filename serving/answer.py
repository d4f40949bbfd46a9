"""What retain says about one customer this month (docs/design.md §8, "One customer, one answer").

:func:`answer` reads one row of the scored month (``scores.parquet``, the frame
``serving.answer_batches`` built) and returns the facts every surface shows — the RM page,
``GET /v1/customers/{id}`` and ``POST /v1/score`` by id — so none of them scores, ranks or
chooses an offer again. :func:`live_answer` is the one exception: feature records a CRM sends
are scored live and carry only what a model can say (no list, action or offer).

Which action and offer a customer gets:

- not to be contacted (``do_not_contact``): that, and no offer;
- on a growth list: the growth offer and its action;
- on a retention list, or listable but not listed (beyond capacity, or held back in the
  control group — then "no call this month"): the retention offer and action;
- anyone else: the growth offer, if there is one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from features.targets import CHURN, UPGRADE, cross_sell
from serving.explain import TOP_K
from serving.lists import CONTROL, GROWTH, RETENTION

SNAPSHOT, LIVE = "snapshot", "live"
DO_NOT_CONTACT = "do_not_contact"
CONTROL_HOLD = "control_no_call"
REASON_FIELDS = ("feature", "value", "contribution", "context")


def present(value: Any) -> bool:
    """False for None, NaN, NA and NaT."""
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array: present
        return True


def plain(value: Any) -> Any:
    """A frame value as JSON: numpy scalars as Python ones, missing as None."""
    if not present(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def churn_reasons(row: Mapping) -> list[dict]:
    """The churn reasons the scored month stored for this customer (empty when none)."""
    out = []
    for rank in range(1, TOP_K + 1):
        feature = row.get(f"reason_{rank}_feature")
        if not present(feature):
            break
        out.append(
            {
                "feature": str(feature),
                "value": plain(row.get(f"reason_{rank}_value")),
                "contribution": float(row[f"reason_{rank}_contribution"]),
                "context": bool(row.get(f"reason_{rank}_context", False)),
                "text_zh": str(row.get(f"reason_{rank}_text_zh") or ""),
                "text_en": str(row.get(f"reason_{rank}_text_en") or ""),
            }
        )
    return out


def growth_reasons(row: Mapping) -> dict[str, list[str]]:
    """Why the growth offer fits, by language (stored for the growth-listed only)."""
    out: dict[str, list[str]] = {}
    for lang in ("zh", "en"):
        texts = [row.get(f"growth_reason_{r}_text_{lang}") for r in range(1, TOP_K + 1)]
        out[lang] = [str(t) for t in texts if present(t)]
    return out


def side(row: Mapping) -> str | None:
    """Which offer and action speak for the customer: "retention", "growth" or None (not to
    be contacted)."""
    if bool(plain(row.get("do_not_contact"))):
        return None
    kind = plain(row.get("list_kind"))
    if kind in (RETENTION, GROWTH):
        return kind
    return RETENTION if present(row.get("list_group")) else GROWTH


def offer(row: Mapping, which: str | None) -> dict | None:
    """The offer of the speaking side, with its propensity (and, for a renewal, the maturing
    amount and date); None when there is none."""
    if which == RETENTION and present(row.get("next_best_offer")):
        date = plain(row.get("offer_date"))
        return {
            "product": str(row["next_best_offer"]),
            "kind": RETENTION,
            "propensity": plain(row.get("offer_propensity")),
            "amount": plain(row.get("offer_amount")),
            "date": None if date is None else str(pd.Timestamp(date).date()),
            "reasons": {"zh": [], "en": []},
        }
    if which == GROWTH and present(row.get("growth_offer")):
        return {
            "product": str(row["growth_offer"]),
            "kind": GROWTH,
            "propensity": plain(row.get("growth_offer_propensity")),
            "amount": None,
            "date": None,
            "value_added": plain(row.get("value_added")),
            "reasons": growth_reasons(row),
        }
    return None


def action(row: Mapping, which: str | None) -> str | None:
    if which is None:
        return DO_NOT_CONTACT
    if which == RETENTION and plain(row.get("list_group")) == CONTROL:
        return CONTROL_HOLD
    value = row.get("action" if which == RETENTION else "growth_action")
    return str(value) if present(value) else None


def answer(customer_id: Any, row: Mapping, products: list[str], explain: bool = True) -> dict:
    """The month's answer for one customer from its scored row (``products``: the cross-sell
    models' products, whose propensities are reported)."""
    which = side(row)
    held_back = plain(row.get("list_group")) == CONTROL
    listed = plain(row.get("list_kind"))
    return {
        "customer_id": customer_id,
        "source": SNAPSHOT,
        "churn_probability": float(row[CHURN.score]),
        "risk_band": str(row["risk_band"]),
        "leaving_now": bool(plain(row.get("leaving_now")) or False),
        "eligible": bool(plain(row.get("eligible_churn")) or False),
        "expected_loss": plain(row.get("expected_loss")),
        "uplift": plain(row.get("uplift")),
        "saved_value": plain(row.get("saved_value")),
        "contribution_12m": plain(row.get("contribution_12m")),
        "propensities": {p: float(row[cross_sell(p).score]) for p in products},
        "upgrade_probability": float(row[UPGRADE.score]),
        "reasons": churn_reasons(row) if explain else None,
        "action": action(row, which),
        "offer": None if held_back else offer(row, which),
        "do_not_contact": bool(plain(row.get("do_not_contact")) or False),
        "open_complaint": (plain(row.get("open_complaints")) or 0) > 0,
        "membership": None
        if listed is None and not held_back
        else {
            "list_id": plain(row.get("list_id")),
            "kind": listed,
            "rank": plain(row.get("list_rank")),
            "group": plain(row.get("list_group")),
        },
    }


def live_answer(
    customer_id: Any, scores: Mapping, products: list[str], reasons: list[dict] | None
) -> dict:
    """What a model can say of a feature record a CRM sent: scores and reasons, nothing that
    needs the month (no leaving flag, list, action or offer)."""
    return {
        "customer_id": customer_id,
        "source": LIVE,
        "churn_probability": float(scores[CHURN.score]),
        "risk_band": str(scores["risk_band"]),
        "leaving_now": None,
        "eligible": None,
        "expected_loss": None,
        "uplift": plain(scores.get("uplift")),
        "saved_value": None,
        "contribution_12m": None,
        "propensities": {p: float(scores[cross_sell(p).score]) for p in products},
        "upgrade_probability": float(scores[UPGRADE.score]),
        "reasons": reasons,
        "action": None,
        "offer": None,
        "do_not_contact": None,
        "open_complaint": None,
        "membership": None,
    }


def shown_reasons(said: dict, lang: str) -> list[tuple[str, bool]]:
    """The reasons a list row of this customer shows, as (text, is context): a growth-listed
    customer's are why the offer fits; everyone else's are the churn reasons."""
    offer, place = said.get("offer"), said.get("membership") or {}
    if place.get("kind") == GROWTH and offer is not None:
        return [(t, False) for t in offer["reasons"][lang]]
    return [(r[f"text_{lang}"], bool(r["context"])) for r in said.get("reasons") or []]
