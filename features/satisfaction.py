"""Satisfaction domain: complaints raised, still open at the cutoff, and how fast resolved."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.panel import by_customer, latest, rolling_sum, safe_ratio


def satisfaction_features(panel: ir.Table) -> dict[str, ir.Value]:
    up_to_now = by_customer(preceding=None, following=0)
    last_raised = latest(ibis.ifelse(panel.complaints_raised > 0, panel.month_number, None))
    last_resolved = latest(ibis.ifelse(panel.complaints_resolved > 0, panel.month_number, None))
    return {
        "complaints_12m": rolling_sum(panel.complaints_raised, 12),
        # raised up to the cutoff minus resolved up to the cutoff: a resolution after the
        # cutoff falls in a later month, so at the cutoff the complaint is still open
        "open_complaints": panel.complaints_raised.sum().over(up_to_now)
        - panel.complaints_resolved.sum().over(up_to_now),
        "days_to_resolve_avg": safe_ratio(
            rolling_sum(panel.resolve_days, 12), rolling_sum(panel.complaints_resolved, 12)
        ),
        "months_since_complaint": (panel.month_number - last_raised).cast("float64"),
        "months_since_complaint_resolved": (panel.month_number - last_resolved).cast("float64"),
    }
