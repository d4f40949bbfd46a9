"""Contribution domain (贡献度): what the customer holds and what they bring the bank."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.config import BankConfig
from features.panel import by_customer, lag, latest, rolling_mean, safe_ratio

SLOPE_MONTHS = 6
# a month-on-month fall of more than this is a drop (noise is a few per cent a month)
DROP = -0.10


def aum_slope_6m(aum: ir.NumericColumn) -> ir.FloatingValue:
    """Least-squares slope of monthly AUM over 6 months, relative to their mean (per month)."""
    centre = (SLOPE_MONTHS - 1) / 2
    spread = sum((k - centre) ** 2 for k in range(SLOPE_MONTHS))
    values = [lag(aum, SLOPE_MONTHS - 1 - k) for k in range(SLOPE_MONTHS)]
    slope = sum((k - centre) / spread * v for k, v in enumerate(values))
    return safe_ratio(slope, sum(values) / SLOPE_MONTHS)


def aum_change(aum: ir.NumericColumn, months: int) -> ir.FloatingValue:
    """Relative change of monthly AUM over ``months`` months (-0.2: a fifth less)."""
    return safe_ratio(aum, lag(aum, months)) - 1


def aum_change_3m(aum: ir.NumericColumn) -> ir.FloatingValue:
    """Relative change of monthly AUM over 3 months (also the bank profile's before-churn
    figure)."""
    return aum_change(aum, 3)


def aum_dropped(panel: ir.Table) -> ir.BooleanValue:
    """A month-on-month fall of more than 10% (a separate step: windows don't nest)."""
    return ibis.coalesce(aum_change(panel.aum, 1) < DROP, False)


def aum_drop_features(panel: ir.Table) -> dict[str, ir.Value]:
    """When money started leaving: months with a drop in the last 6, months since the last.
    Needs ``aum_dropped`` on the panel."""
    last_drop = latest(ibis.ifelse(panel.aum_dropped, panel.month_number, None))
    return {
        "aum_drop_months_6m": panel.aum_dropped.cast("int64").sum().over(by_customer(preceding=5)),
        "months_since_aum_drop": (panel.month_number - last_drop).cast("float64"),
    }


def contribution_features(panel: ir.Table, config: BankConfig) -> dict[str, ir.Value]:
    aum = panel.aum
    features = {
        "aum_avg_1m": aum,
        "aum_avg_3m": rolling_mean(aum, 3),
        "aum_avg_12m": rolling_mean(aum, 12),
        "aum_change_1m": aum_change(aum, 1),
        "aum_change_3m": aum_change_3m(aum),
        "aum_change_6m": aum_change(aum, 6),
        # this month against the three before it: the basis of the "already leaving" rule
        "aum_vs_prev_3m": safe_ratio(aum, aum.mean().over(by_customer(rows=(-3, -1)))) - 1,
        "aum_slope_6m": aum_slope_6m(aum),
        # annualised: the mean monthly contribution over up to 12 months, times 12
        "contribution_12m": rolling_mean(panel.contribution_month, 12) * 12,
    }
    for product in config.product_codes:
        features[f"balance_{product}"] = panel[f"balance_{product}"]
    return features


def contribution_share_outlet(rows: ir.Table) -> ir.FloatingValue:
    """Share of the outlet's total contribution at the same cutoff."""
    outlet = ibis.window(group_by=["cutoff", "outlet_id"])
    return safe_ratio(rows.contribution_12m, rows.contribution_12m.sum().over(outlet))
