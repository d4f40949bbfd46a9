"""Loyalty domain: how long, how broad and how close the relationship is."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.panel import by_customer, lag, latest, rolling_sum


def loyalty_features(panel: ir.Table) -> dict[str, ir.Value]:
    salary_3m = rolling_sum(panel.salary_count, 3)
    salary_6_to_4_months_ago = panel.salary_count.sum().over(by_customer(rows=(-5, -3)))
    last_salary = latest(ibis.ifelse(panel.salary_count > 0, panel.month_number, None))
    last_open = latest(ibis.ifelse(panel.products_opened > 0, panel.month_number, None))
    return {
        "tenure_months": panel.month_number - panel.open_number,
        "products_held": panel.products_held,
        "product_breadth_change_6m": panel.products_held - lag(panel.products_held, 6),
        "salary_credit_3m": salary_3m,
        "salary_credit_prev_3m": ibis.coalesce(salary_6_to_4_months_ago, 0),
        "months_since_salary_credit": (panel.month_number - last_salary).cast("float64"),
        "salary_credit_lost": (ibis.coalesce(salary_6_to_4_months_ago, 0) > 0) & (salary_3m == 0),
        "months_since_last_product_open": panel.month_number - last_open,
        "rm_contacts_3m": rolling_sum(panel.contacts, 3),
        "days_since_rm_contact": panel.month.epoch_days() - latest(panel.last_contact_day),
    }
