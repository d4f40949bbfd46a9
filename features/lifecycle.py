"""Lifecycle domain: money coming up for renewal, and who the customer is."""

from __future__ import annotations

import ibis.expr.types as ir

from features.panel import safe_ratio

DAYS_PER_YEAR = 365.25


def lifecycle_features(panel: ir.Table) -> dict[str, ir.Value]:
    return {
        # any product with maturity dates: what a bank's catalogue calls them does not matter
        "maturing_30d": panel.maturing,
        "maturing_share_30d": safe_ratio(panel.maturing, panel.aum),
        "maturing_share_31_90d": safe_ratio(panel.maturing_later, panel.aum),
        "age": ((panel.month.epoch_days() - panel.birth_date.epoch_days()) / DAYS_PER_YEAR).floor(),
        "city_tier": panel.city_tier,
    }
