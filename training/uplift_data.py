"""The rows an uplift model learns from: matured customer-months whose call was randomised.

A row is an eligible (customer, cutoff) of the feature file with a complete churn label and an
assignment of that cutoff (the warehouse's ``list_assignments`` — a bank's earlier campaigns,
or retain's own ``assignments.parquet`` loaded back) whose probability of a call is strictly
between 0 and 1: the already leaving (called by rule) and a policy without a draw teach
nothing about the effect. Called = ``treated`` or ``explore``. Splits are out of time with the
embargo of docs/design.md §5: the held-out months are the latest matured cutoffs, training
every cutoff at least ``horizon`` months before the first of them.

Too little history is refused with the power calculation (:func:`power_needed`): how many
control customers an average effect of a given size needs, and how many months that is at the
bank's present rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from features.catalog import feature_names
from features.targets import CHURN, ELIGIBLE_CHURN
from training.dataset import DatasetError, as_inputs, months_between, products_in
from training.uplift_learners import Rows

CALLED = ("treated", "explore")
ASSIGNMENT_COLUMNS = ("customer_id", "cutoff", "group", "p_treat")


class UpliftHistoryError(DatasetError):
    """Too little randomised history to learn whom a call saves (with what it would take)."""


def as_month_end(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values)).dt.normalize().dt.strftime("%Y-%m-%d")


def uplift_rows(features: pd.DataFrame, assignments: pd.DataFrame) -> Rows:
    """Randomised, matured rows of ``features`` joined with their ``assignments``."""
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in assignments]
    if missing:
        raise DatasetError(f"list_assignments lacks column(s) {', '.join(missing)}")
    drawn = assignments[(assignments["p_treat"] > 0) & (assignments["p_treat"] < 1)]
    drawn = drawn.assign(cutoff=as_month_end(drawn["cutoff"]).to_numpy())
    rows = features[features[CHURN.label].notna() & features[ELIGIBLE_CHURN].fillna(False)]
    rows = rows.assign(cutoff=as_month_end(rows["cutoff"]).to_numpy())
    joined = rows.merge(
        drawn[list(ASSIGNMENT_COLUMNS)], on=["customer_id", "cutoff"], validate="one_to_one"
    )
    inputs = [f for f in feature_names(products_in(features)) if f in joined]
    return Rows(
        as_inputs(joined, inputs),
        joined[CHURN.label].to_numpy(dtype=int),
        joined["group"].isin(CALLED).to_numpy(dtype=int),
        joined["p_treat"].to_numpy(dtype="float64"),
        joined["contribution_12m"].clip(lower=0).to_numpy(dtype="float64"),
        joined["customer_id"].to_numpy(),
        joined["cutoff"].to_numpy(dtype=object),
    )


@dataclass(frozen=True)
class UpliftSplit:
    train: Rows
    held_out: Rows
    train_cutoffs: tuple[str, ...]
    held_out_cutoffs: tuple[str, ...]


def split_uplift(rows: Rows, horizon: int, held_out_months: int = 2) -> UpliftSplit:
    """The latest ``held_out_months`` matured cutoffs held out; training ≤ their first − h."""
    cutoffs = sorted(set(rows.cutoff))
    held = cutoffs[-held_out_months:]
    train = [c for c in cutoffs if months_between(c, held[0]) >= horizon]
    if not train:
        raise UpliftHistoryError(
            f"randomised history covers {len(cutoffs)} matured month(s) ({', '.join(cutoffs)}): "
            f"holding out the last {len(held)} with a {horizon}-month embargo leaves nothing to "
            f"train on — at least {held_out_months + horizon + 1} matured months are needed"
        )
    return UpliftSplit(
        rows.take(np.isin(rows.cutoff, train)),
        rows.take(np.isin(rows.cutoff, held)),
        tuple(train),
        tuple(held),
    )


def power_needed(
    base: float, effect: float, control_share: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Control customers a two-sided test at ``alpha`` needs to find an average effect of
    ``effect`` (churn ``base`` without a call, ``base − effect`` with one) with ``power``, when
    a share ``control_share`` of the randomised customers is held back."""
    ratio = (1 - control_share) / control_share  # called per control customer
    p0, p1 = base, max(base - effect, 1e-6)
    pooled = (p0 + ratio * p1) / (1 + ratio)
    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    spread = z_a * np.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)) + z_b * np.sqrt(
        p0 * (1 - p0) + p1 * (1 - p1) / ratio
    )
    return int(np.ceil((spread / effect) ** 2))


def check_history(rows: Rows, effect: float = 0.02) -> dict:
    """The randomised history against the power calculation for an average effect of
    ``effect``; raises :class:`UpliftHistoryError` naming the months and customers needed."""
    control = rows.treated == 0
    months = max(len(set(rows.cutoff)), 1)
    base = float(rows.y[control].mean()) if control.any() else float("nan")
    share = float(control.mean()) if len(rows) else 0.0
    figures = {
        "randomised_rows": len(rows),
        "months": months,
        "control_rows": int(control.sum()),
        "control_churn": base,
    }
    if not control.any() or control.all() or not np.isfinite(base) or base <= effect:
        raise UpliftHistoryError(
            f"{len(rows):,} randomised rows over {months} month(s), {int(control.sum()):,} held "
            "back: a control group and called customers with churners among them are needed "
            "(lists with control_share > 0 for some months)"
        )
    needed = power_needed(base, effect, share)
    figures["control_needed"] = needed
    per_month = control.sum() / months
    figures["months_needed"] = int(np.ceil(needed / per_month))
    if control.sum() < needed:
        raise UpliftHistoryError(
            f"{int(control.sum()):,} control customers over {months} month(s) (churn "
            f"{base:.1%}): finding a {effect:.0%}-point effect at 80% power needs {needed:,}, "
            f"about {figures['months_needed']} months at the present {per_month:,.0f} a month "
            f"— keep the control group and exploration running, then train again"
        )
    return figures
