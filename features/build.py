"""Assemble the feature table: one row per (customer, cutoff), features, labels and truth.

Rows: customers open at the cutoff with at least one balance that month. Columns: ids and
org placement at the cutoff (outlet, sub-branch, branch, RM as of the cutoff), every catalog
feature, ``eligible_churn``, the labels, and ``truth_*`` columns when the warehouse has a
truth table (never model inputs).
"""

from __future__ import annotations

from datetime import date

import ibis.expr.types as ir
import pandas as pd
from ibis import _

from features.activity import activity_features
from features.at_month import at_month
from features.config import BankConfig
from features.contribution import (
    aum_drop_features,
    aum_dropped,
    contribution_features,
    contribution_share_outlet,
)
from features.labels import already_leaving, churn_eligible, label_features, no_labels
from features.lifecycle import lifecycle_features
from features.loyalty import loyalty_features
from features.panel import (
    UNBOUNDED,
    Warehouse,
    build_panel,
    month_number,
    read_by_windows,
    window_reach,
)
from features.products import resolve_products
from features.satisfaction import satisfaction_features
from features.targets import (
    ELIGIBLE_CHURN,
    HOLDS_PREFIX,
    LABEL_PREFIX,
    TRUTH_PREFIX,
    holds_column,
    truth_column,
)
from features.tiers import (
    months_in_tier,
    pyramid_level,
    tier_change_flags,
    tier_history_features,
    tier_level,
    tier_name,
)

ID_COLUMNS = (
    "customer_id",
    "cutoff",
    "outlet_id",
    "sub_branch_id",
    "branch_id",
    "rm_id",
    "tier",
    "do_not_contact",
    ELIGIBLE_CHURN,
    "leaving_now",
)
# what lists and offers need besides the model inputs: never a model input
CONTEXT_COLUMNS = ("maturing_product", "maturing_date")
# features computed on the cutoff rows (they need other customers or the RM table)
CUTOFF_FEATURES = ("contribution_share_outlet", "pyramid_level", "rm_assigned")
# of those, the ones that compare a customer with the others at the cutoff
RANKING_COLUMNS = ("contribution_share_outlet", "pyramid_level")


class CutoffError(ValueError):
    """Cutoffs that the warehouse cannot answer for."""


def _month_numbers(cutoffs: list[date]) -> list[int]:
    return [c.year * 12 + c.month - 1 for c in cutoffs]


def build_features(
    wh: Warehouse,
    cutoffs: list[date],
    config: BankConfig,
    last_month: date | None = None,
    trim: bool = False,
    first_month: date | None = None,
) -> ir.Table:
    """The feature table expression for ``cutoffs`` (month-end dates); ``last_month``,
    ``trim`` and ``first_month`` as in ``customer_rows``."""
    rows = customer_rows(wh, cutoffs, with_catalogue(wh, config), last_month, trim, first_month)
    return cutoff_rows(rows, wh)


def with_catalogue(wh: Warehouse, config: BankConfig) -> BankConfig:
    """``config`` with the warehouse's products, unless it has them already."""
    return config if config.products else resolve_products(wh.products, config)


def customer_rows(
    wh: Warehouse,
    cutoffs: list[date],
    config: BankConfig,
    last_month: date | None = None,
    trim: bool = False,
    first_month: date | None = None,
    panel: ir.Table | None = None,
) -> ir.Table:
    """Everything that depends on one customer's own history, at each cutoff.

    Customers are independent here, so the warehouse may be cut into customer batches
    (``Warehouse.batch``) and the results stacked: that is how large banks fit in memory.
    A batch must hold enough customers to have balances in every month of the warehouse.

    ``last_month``: the warehouse's last month (``check_cutoffs`` returns it), else read from
    the balances. Known, it lets the build skip labels no cutoff can complete yet.

    ``trim``: compute the windowed features only over the months they read — from the longest
    lookback before the first cutoff to the label horizon after the last, as the expressions
    themselves say (``window_reach``) — and the few features that look back over the whole
    history (last contact, open complaints, months in tier…) in a narrow pass of their own
    over every month. Same values, far fewer rows through the windows. With ``first_month``
    (the warehouse's first), nothing is split when the windows would read every month anyway.
    At a single cutoff the windows become aggregates over the months each reads, one row per
    customer (``features.at_month``): the same values without a window operator.

    ``panel``: ``build_panel(wh, config)`` already computed (e.g. a table holding one customer
    batch's panel, so that the panel is aggregated once and read by every pass).
    """
    config = with_catalogue(wh, config)
    months = _month_numbers(cutoffs)
    last, labelled = _last_month(wh, months, config, last_month)
    if panel is None:
        panel = build_panel(wh, config)
    full = feature_panel(panel, config, last, labelled)
    if trim and len(months) == 1:  # one row per customer: the windows as aggregates
        ahead = max(a for _, a in window_reach(full).values())
        upto = panel.filter(panel.month_number <= months[0] + ahead)
        one = at_month(feature_panel(upto, config, last, labelled), months[0])
        if one is not None:
            return _with_cutoff(one.filter(one.has_balances > 0), config)
    if trim:
        full = _trimmed(full, panel, months, config, last, labelled, first_month)
    return _with_cutoff(full.filter(full.month_number.isin(months), full.has_balances > 0), config)


def _last_month(wh, months: list[int], config: BankConfig, last_month: date | None) -> tuple:
    """The warehouse's last month number (an expression when not known) and whether any
    cutoff's label horizon can be complete."""
    if last_month is None:
        return month_number(wh.balances.month.max()).as_scalar(), True
    last = _month_numbers([last_month])[0]
    return last, min(months) + config.churn.horizon_months <= last


def row_only_columns(
    wh: Warehouse, cutoffs: list[date], config: BankConfig, last_month: date | None = None
) -> frozenset[str]:
    """The panel columns the features at ``cutoffs`` read at the cutoff rows only — no
    window reads them (``read_by_windows``) — which ``build_panel(..., rows_at=...)`` may
    therefore aggregate over the cutoff months alone."""
    config = with_catalogue(wh, config)
    months = _month_numbers(cutoffs)
    last, labelled = _last_month(wh, months, config, last_month)
    panel = build_panel(wh, config)
    windowed = read_by_windows(feature_panel(panel, config, last, labelled))
    return frozenset(set(panel.columns) - windowed - {"customer_id", "month_number"})


def _trimmed(full, panel, months, config, last, labelled, first_month) -> ir.Table:
    """``full`` with its windowed features computed over the months they read only, and
    those reading the whole history in a narrow pass of their own (``customer_rows``)."""
    reach = window_reach(full)
    whole = [c for c, (back, _) in reach.items() if back == UNBOUNDED]
    back = max(b for b, _ in reach.values() if b != UNBOUNDED)
    ahead = max(a for _, a in reach.values())
    first = _month_numbers([first_month])[0] if first_month else None
    if first is not None and min(months) - back <= first:  # the windows read every month
        return full
    window = panel.filter(panel.month_number.between(min(months) - back, max(months) + ahead))
    keys = ["customer_id", "month_number"]
    history = full.filter(full.month_number.isin(months)).select(*keys, *whole)
    windowed = feature_panel(window, config, last, labelled).drop(*whole)
    return windowed.join(history, keys)


def _with_cutoff(rows: ir.Table, config: BankConfig) -> ir.Table:
    return rows.mutate(cutoff=rows.month, tier=tier_name(rows.tier_level, config.tiers))


def feature_panel(
    panel: ir.Table, config: BankConfig, last_month: int | ir.IntegerValue, labelled: bool
) -> ir.Table:
    """Every per-customer feature and label on every row of ``panel``, in two passes of
    windows (windows don't nest): month-on-month moves (AUM drop, tier changes) first, then
    everything that reads them or the panel. Each pass sorts the wide panel once."""
    level = tier_level(panel.aum, config.tiers)
    panel = panel.mutate(
        aum_dropped=aum_dropped(panel), tier_level=level, **tier_change_flags(level)
    )
    eligible = churn_eligible(panel, config)
    labels = label_features(panel, config, last_month, eligible) if labelled else no_labels(config)
    return panel.mutate(
        **aum_drop_features(panel),
        **contribution_features(panel, config),
        **loyalty_features(panel),
        **activity_features(panel),
        **satisfaction_features(panel),
        **lifecycle_features(panel),
        **{ELIGIBLE_CHURN: eligible},
        leaving_now=already_leaving(panel, config),
        **{holds_column(p): panel[f"held_{p}"] > 0 for p in config.product_codes},
        **tier_history_features(panel),
        months_in_tier=months_in_tier(panel),
        **labels,
    )


def cutoff_rows(rows: ir.Table, wh: Warehouse) -> ir.Table:
    """What needs other customers or other tables at the cutoff: the outlet share, the
    pyramid, the RM on the cutoff day and the truth. Ranked on a narrow table, joined back."""
    rows = rows.join(ranking(rows), ["customer_id", "cutoff"])
    return customer_context(rows, wh)


def ranking(rows: ir.Table) -> ir.Table:
    """``RANKING_COLUMNS`` (the outlet share and the pyramid level) of ``rows``, by customer
    and cutoff: the features that compare a customer with the others."""
    keys = ["customer_id", "cutoff"]
    narrow = rows.select(*keys, "outlet_id", "sub_branch_id", "branch_id", "contribution_12m")
    narrow = narrow.mutate(contribution_share_outlet=contribution_share_outlet(narrow))
    return pyramid_level(narrow).select(*keys, *RANKING_COLUMNS)


def customer_context(rows: ir.Table, wh: Warehouse) -> ir.Table:
    """The RM on the cutoff day and the truth: other tables, but the customer's own rows."""
    rows = _with_rm_as_of_cutoff(rows, wh.rm_assignments)
    if wh.truth is not None:
        rows = _with_truth(rows, wh.truth)
    return rows


def _with_rm_as_of_cutoff(rows: ir.Table, assignments: ir.Table) -> ir.Table:
    """Who looked after the customer on the cutoff day (a plain range join, not asof_join)."""
    a = assignments
    joined = rows.left_join(
        a,
        [
            rows.customer_id == a.customer_id,
            a.valid_from <= rows.cutoff,
            a.valid_to.isnull() | (a.valid_to > rows.cutoff),
        ],
    )
    joined = joined.drop(*[c for c in joined.columns if c.endswith("_right")])
    joined = joined.drop("valid_from", "valid_to")
    return joined.mutate(rm_assigned=joined.rm_id.notnull())


def _with_truth(rows: ir.Table, truth: ir.Table) -> ir.Table:
    values = [c for c in truth.columns if c not in ("customer_id", "month", "exit_month")]
    t = truth.select("customer_id", "month", *[truth[c].name(truth_column(c)) for c in values])
    joined = rows.left_join(t, [rows.customer_id == t.customer_id, rows.cutoff == t.month])
    return joined.drop(*[c for c in joined.columns if c.endswith("_right")], "month_right")


def select_output(rows: ir.Table, feature_names: list[str]) -> ir.Table:
    return (
        rows.select(*output_columns(rows.columns, feature_names))
        .order_by(["cutoff", "customer_id"])
        .mutate(cutoff=_.cutoff.cast("date"))
    )


def output_columns(columns: list[str], feature_names: list[str]) -> list[str]:
    """The feature file's columns, in order, of a table with ``columns``."""
    labels = sorted(c for c in columns if c.startswith(LABEL_PREFIX))
    truth = sorted(c for c in columns if c.startswith(TRUTH_PREFIX))
    holds = [c for c in columns if c.startswith(HOLDS_PREFIX)]
    return [*ID_COLUMNS, *feature_names, *CONTEXT_COLUMNS, *holds, *labels, *truth]


def parse_cutoffs(spec: str, every: int = 1) -> list[date]:
    """``FIRST:LAST`` month-end dates (or a single date) → every ``every``-th month-end."""
    first, _, last = spec.partition(":")
    try:
        start, end = pd.Timestamp(first), pd.Timestamp(last or first)
    except ValueError as exc:
        raise CutoffError(f"cutoffs must be FIRST:LAST dates (YYYY-MM-DD), got {spec!r}") from exc
    for moment in (start, end):
        if moment != moment + pd.offsets.MonthEnd(0):
            raise CutoffError(f"cutoff {moment.date()} is not a month-end date")
    if end < start or every < 1:
        raise CutoffError(f"empty cutoff range {spec!r} (every {every})")
    return [d.date() for d in pd.date_range(start, end, freq="ME")[::every]]


def check_cutoffs(wh: Warehouse, cutoffs: list[date]) -> tuple[date, date]:
    """Every cutoff must be a month the warehouse has balances for, and no month between the
    first and the last may be missing: windows count months, so a missing month would
    silently stretch every window over it. Returns the warehouse's first and last months."""
    months = wh.balances.select(month=wh.balances.month).distinct().to_pandas()["month"]
    if months.empty:
        raise CutoffError("the balances table is empty: no month to build features for")
    present = {pd.Timestamp(m).date() for m in months}
    first, last = min(present), max(present)
    expected = [d.date() for d in pd.date_range(first, last, freq="ME")]
    missing = [m for m in expected if m not in present]
    if missing:
        shown = ", ".join(m.isoformat() for m in missing[:5])
        raise CutoffError(
            f"balances: {len(missing)} month(s) between {first} and {last} have no rows at all "
            f"({shown}); every month of history must be present"
        )
    outside = [c for c in cutoffs if not first <= c <= last]
    if outside:
        raise CutoffError(
            f"{len(outside)} cutoff(s) outside the warehouse's months {first}..{last}, "
            f"e.g. {outside[0]}"
        )
    return first, last
