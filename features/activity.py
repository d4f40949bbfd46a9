"""Activity domain: how the customer uses the accounts, and where the money goes."""

from __future__ import annotations

import ibis.expr.types as ir

from features.panel import by_customer, latest, rolling_sum, safe_ratio


def activity_features(panel: ir.Table) -> dict[str, ir.Value]:
    count_3m = rolling_sum(panel.txn_count, 3)
    count_previous_3m = panel.txn_count.sum().over(by_customer(rows=(-5, -3)))
    return {
        "txn_count_1m": panel.txn_count,
        "txn_count_3m": count_3m,
        "txn_amount_in_3m": rolling_sum(panel.amount_in, 3),
        "txn_amount_out_3m": rolling_sum(panel.amount_out, 3),
        "outflow_to_other_banks_share_3m": safe_ratio(
            rolling_sum(panel.out_other_bank, 3), rolling_sum(panel.amount_out, 3)
        ),
        "outflow_to_other_banks_1m": panel.out_other_bank,
        "outflow_to_other_banks_to_aum_3m": safe_ratio(
            rolling_sum(panel.out_other_bank, 3), panel.aum.mean().over(by_customer(rows=(-3, 0)))
        ),
        "mobile_share_3m": safe_ratio(rolling_sum(panel.mobile_count, 3), count_3m),
        "activity_change_3m": safe_ratio(count_3m, count_previous_3m) - 1,
        "days_since_last_txn": panel.month.epoch_days() - latest(panel.last_txn_day),
    }
