"""A list as the page prints it: five columns that fit a laptop's screen without sideways
scrolling — who, why, what to do, value, last contact — and on a phone one card per customer
(the page's stylesheet), what to do first.

A retention row's value is its expected loss (and saved value when the lists rank by it), its
churn probability and contribution; a growth row's is the value an RM can add — a growth list
never leads with the churn probability of customers who are not at risk.
"""

from __future__ import annotations

import pandas as pd

from serving.api.state import plain_id
from serving.lists import GROWTH
from serving.texts import ACTIONS, OFFERS, text
from serving.ui.words import WORDS, word

# what the value column sorts by, and what else a list may be sorted by
VALUE_SORT = {"retention": "expected_loss", "growth": "value_added"}
SORTS = {
    "retention": ("rank", "expected_loss", "saved_value", "p_churn", "contribution_12m"),
    "growth": ("rank", "value_added", "offer_propensity"),
}


def columns(kind: str, lang: str) -> list[tuple[str, str, str | None]]:
    """(key, header, what the header sorts by) of a list's columns, in their order."""
    keys = (("rank", "rank"), ("who", None), ("why", None), ("todo", None))
    keys += (("value", VALUE_SORT[kind]), ("contact", None))
    header = {"rank": "#", "who": word(WORDS, "customer", lang)}
    names = {"why": "why", "todo": "todo", "value": "value", "contact": "last_contact"}
    return [(k, header.get(k) or word(WORDS, names[k], lang), by) for k, by in keys]


def sorts(kind: str, rows: pd.DataFrame, lang: str) -> list[tuple[str, str]]:
    """(column, label) a list of this kind can be sorted by (those it has values of)."""
    labels = {"rank": "#", "p_churn": word(WORDS, "p_churn", lang)}
    keep = [k for k in SORTS[kind] if k == "rank" or (k in rows and rows[k].notna().any())]
    return [(k, labels.get(k) or word(WORDS, k, lang)) for k in keep]


def shown_rows(rows: pd.DataFrame, bank, lang: str, kind: str, last: dict) -> list[dict]:
    """The rows as the page prints them: labels in ``lang``, % and whole yuan; ``last``: each
    customer's last contact (:func:`serving.ui.past.last_contacts`), by id."""
    out = []
    for r in rows.to_dict("records"):
        band = r.get("risk_band") if isinstance(r.get("risk_band"), str) else None
        out.append(
            {
                "rank": int(r["rank"]),
                "customer_id": plain_id(r["customer_id"]),
                "customer_name": str(r.get("customer_name", "")),
                "tier": bank.tiers.label(r["tier"], lang) if isinstance(r.get("tier"), str) else "",
                "band": word(WORDS, band, lang) if band else None,
                "band_code": band,
                "leaving_now": bool(r["leaving_now"]) if pd.notna(r.get("leaving_now")) else False,
                "reasons": [
                    t
                    for t in (r.get("reason_1"), r.get("reason_2"), r.get("reason_3"))
                    if isinstance(t, str)
                ],
                "action": text(ACTIONS, str(r.get("action", "")), lang)
                if isinstance(r.get("action"), str)
                else "—",
                "offer": offer_of(r, bank, lang),
                "figures": figures(r, kind, lang),
                "last": last.get(r["customer_id"], {}),
            }
        )
    return out


def offer_of(row: dict, bank, lang: str) -> dict | None:
    """The row's offer: its name, the chance the customer takes it, and for a renewal what
    matures when."""
    product = row.get("growth_offer") if "growth_offer" in row else row.get("next_best_offer")
    if not isinstance(product, str):
        return None
    label = text(OFFERS, product, lang) if product in OFFERS else bank.product_label(product, lang)
    renewal = None
    if pd.notna(row.get("offer_amount")) and pd.notna(row.get("offer_date")):
        renewal = word(WORDS, "renewal", lang).format(
            amount=money(row["offer_amount"]), date=pd.Timestamp(row["offer_date"]).date()
        )
    return {"label": label, "propensity": pct(row.get("offer_propensity")), "renewal": renewal}


def figures(row: dict, kind: str, lang: str) -> list[tuple[str, str]]:
    """(label, value) of what the customer is worth to this list, the one it ranks by first."""
    if kind == GROWTH:
        wanted = (("value_added", money, "cny"),)
    else:
        wanted = (
            ("expected_loss", money, "cny"),
            ("saved_value", money, "cny"),
            ("p_churn", pct, ""),
            ("contribution_12m", money, "cny"),
        )
    out = []
    for key, shown, unit in wanted:
        value = shown(row.get(key))
        if value is not None:
            out.append((word(WORDS, key, lang), f"{value} {word(WORDS, unit, lang)}".strip()))
    return out


def number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def pct(value) -> str | None:
    shown = number(value)
    return None if shown is None else f"{shown * 100:.1f}%"


def money(value) -> str | None:
    shown = number(value)
    return None if shown is None else f"{shown:,.0f}"
