"""Eligibility and labels: the one home of the churn rule (docs/design.md §5).

- ``already_leaving``: AUM this month below ``leaving_ratio`` of the average of the three
  months before — the money is going; lists show such customers by rule, models never see them.
- ``eligible_churn``: open ≥ ``min_tenure_months``, 3-month average AUM ≥ ``min_aum``, three
  months of history, and not already leaving.
- ``label_churn``: among eligible customers, AUM in the last month of the horizon below
  ``attrition_ratio`` of the 3-month average up to the cutoff. Closing every asset account
  gives AUM 0, so it counts.
- ``label_cross_sell_<product>``: eligible if the product is not held at the cutoff; positive
  if it is held (open) in any month of the horizon.
- ``label_upgrade``: eligible below the top tier; positive if the tier at cutoff + horizon is
  higher.

Labels look only at (cutoff, cutoff + horizon]; a label is null where the customer is not
eligible or the horizon is not complete.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.config import BankConfig
from features.panel import by_customer, lead, rolling_mean
from features.targets import (
    CHURN,
    ELIGIBLE_CHURN,
    UPGRADE,
    all_targets,
    cross_sell,
    holds_column,
)


def _previous_3m(panel: ir.Table) -> tuple[ir.NumericValue, ir.IntegerValue]:
    window = by_customer(rows=(-3, -1))
    return panel.aum.mean().over(window), panel.aum.count().over(window)


def already_leaving(panel: ir.Table, config: BankConfig) -> ir.BooleanValue:
    before, months_before = _previous_3m(panel)
    return (
        (months_before == 3)
        & (before >= config.churn.min_aum)
        & (panel.aum < config.churn.leaving_ratio * before)
    )


def churn_eligible(panel: ir.Table, config: BankConfig) -> ir.BooleanValue:
    churn = config.churn
    before, months_before = _previous_3m(panel)
    return (
        (panel.month_number - panel.open_number >= churn.min_tenure_months)
        & (months_before == 3)
        & (rolling_mean(panel.aum, 3) >= churn.min_aum)
        & (panel.aum >= churn.leaving_ratio * before)
    )


def churned(panel: ir.Table, config: BankConfig) -> ir.BooleanValue:
    """AUM at the end of the horizon below the attrition ratio of the 3-month average."""
    horizon = config.churn.horizon_months
    return lead(panel.aum, horizon) < config.churn.attrition_ratio * rolling_mean(panel.aum, 3)


def label_names(config: BankConfig) -> list[str]:
    return [target.label for target in all_targets(config.product_codes)]


def label_features(
    panel: ir.Table,
    config: BankConfig,
    last_month: int | ir.IntegerValue,
    eligible: ir.BooleanValue | None = None,
) -> dict[str, ir.Value]:
    """Needs ``tier_level`` on the panel, and ``eligible_churn`` unless ``eligible`` (its
    expression, so labels are computed in the same pass) is given; ``last_month`` is the last
    month number with data (the horizon must end on or before it)."""
    h = config.churn.horizon_months
    complete = panel.month_number + h <= last_month
    eligible = panel[ELIGIBLE_CHURN] if eligible is None else eligible
    holds = {holds_column(p): panel[f"held_{p}"] > 0 for p in config.product_codes}

    def column(name: str) -> ir.Value:
        """The panel's values of a column the targets' populations are written over."""
        if name == ELIGIBLE_CHURN:
            return eligible
        return holds[name] if name in holds else panel[name]

    def defined(target) -> ir.BooleanValue:  # who the target is for: features/targets.py
        return complete & target.population(column, len(config.tiers.names))

    null = ibis.null("int64")
    labels = {
        CHURN.label: ibis.ifelse(defined(CHURN), churned(panel, config).cast("int64"), null),
        UPGRADE.label: ibis.ifelse(
            defined(UPGRADE), (lead(panel.tier_level, h) > panel.tier_level).cast("int64"), null
        ),
    }
    for product in config.product_codes:
        held = panel[f"held_{product}"]
        # held (open) in any month of the horizon: one frame, not one lead per month
        bought = ibis.coalesce(held.max().over(by_customer(rows=(1, h))), 0)
        target = cross_sell(product)
        labels[target.label] = ibis.ifelse(defined(target), bought, null)
    return labels


def no_labels(config: BankConfig) -> dict[str, ir.Value]:
    """The label columns, all null: for cutoffs none of whose horizons is complete yet (the
    monthly scoring run), where computing them would only confirm they are null."""
    return {name: ibis.null("int64") for name in label_names(config)}
