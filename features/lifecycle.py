"""Lifecycle domain: money coming up for renewal, and who the customer is."""

from __future__ import annotations

import ibis.expr.types as ir

DAYS_PER_YEAR = 365.25


def lifecycle_features(panel: ir.Table) -> dict[str, ir.Value]:
    return {
        "time_deposit_maturing_30d": panel.td_maturing,
        "wm_maturing_30d": panel.wm_maturing,
        "age": ((panel.month.epoch_days() - panel.birth_date.epoch_days()) / DAYS_PER_YEAR).floor(),
        "city_tier": panel.city_tier,
    }
