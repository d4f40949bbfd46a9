"""Tiers and the pyramid (金字塔): where the customer stands, absolutely and relatively.

Tier by last-month AUM on the bank's ladder. Pyramid level by 12-month contribution, relative:
the top 20% of each outlet are level 1; the top 20% of those within their sub-branch level 2;
of those within their branch level 3; of those bank-wide level 4. Ties break by customer_id.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.config import TierLadder
from features.panel import by_customer, lag, latest

PYRAMID_SCOPES = ("outlet_id", "sub_branch_id", "branch_id", None)
PYRAMID_SHARE = 0.2


def tier_level(aum: ir.NumericValue, ladder: TierLadder) -> ir.IntegerValue:
    """0 for the lowest tier up to len(bounds); a bound itself belongs to the tier above."""
    return sum((aum >= bound).cast("int64") for bound in ladder.bounds)


def tier_name(level: ir.IntegerValue, ladder: TierLadder) -> ir.StringValue:
    return level.cases(*[(i, name) for i, name in enumerate(ladder.names)])


def tier_change_flags(level: ir.IntegerValue) -> dict[str, ir.Value]:
    """Month-on-month tier moves of ``level`` (the tier level expression, so the flags are
    computed in the same pass as the level)."""
    previous = lag(level, 1)
    return {
        "tier_changed": ibis.coalesce((level != previous).cast("int64"), 1),
        "tier_dropped": ibis.coalesce((level < previous).cast("int64"), 0),
    }


def tier_history_features(panel: ir.Table) -> dict[str, ir.Value]:
    """Needs the change flags on the panel (a separate step: windows don't nest)."""
    return {"tier_downgrades_12m": panel.tier_dropped.sum().over(by_customer(preceding=11))}


def months_in_tier(panel: ir.Table) -> ir.IntegerValue:
    """Months in the current tier, this one included: since the last tier change (the first
    month counts as one). The panel has a row for every month from opening, so months are
    rows. Needs the change flags on the panel."""
    last_change = latest(ibis.ifelse(panel.tier_changed == 1, panel.month_number, None))
    return (panel.month_number - last_change + 1).cast("int64")


def pyramid_level(rows: ir.Table) -> ir.Table:
    """Add ``pyramid_level`` to one row per (customer, cutoff) with contribution and org ids."""
    rows = rows.mutate(pyramid_level=ibis.literal(0, "int64"))
    for level, scope in enumerate(PYRAMID_SCOPES, start=1):
        group = ["cutoff", "pyramid_level"] + ([scope] if scope else [])
        window = ibis.window(
            group_by=group, order_by=[ibis.desc("contribution_12m"), "customer_id"]
        )
        in_top = (
            (
                ibis.row_number().over(window)
                < PYRAMID_SHARE * rows.customer_id.count().over(ibis.window(group_by=group))
            )
            & (rows.pyramid_level == level - 1)
            & (rows.contribution_12m > 0)
        )
        rows = rows.mutate(pyramid_level=ibis.ifelse(in_top, level, rows.pyramid_level))
    return rows
