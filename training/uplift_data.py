"""The rows an uplift model learns from: matured customer-months whose call was randomised.

A row is an eligible (customer, cutoff) of the feature file with a complete churn label and an
assignment of that cutoff (the warehouse's ``list_assignments`` — a bank's earlier campaigns,
or retain's own ``assignments.parquet`` loaded back) whose probability of a call is strictly
between 0 and 1: the already leaving (called by rule) and a policy without a draw teach
nothing about the effect. Called = ``treated`` or ``explore``. Splits are out of time with the
embargo of docs/design.md §5: the held-out months are the latest matured cutoffs, training
every cutoff at least ``horizon`` months before the first of them.

Too little history is refused with the power calculation (:func:`history_power`): how many
control customers an average effect of a given size in the would-be lists needs (treated
against control, :func:`ranked_places`), and how many months that is at the bank's present
rate.
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
from training.uplift_metrics import average_effect

CALLED = ("treated", "explore")
RANKED_P_TREAT = 0.5  # above: a would-be list's place (treated or control), not a draw below it
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


def history_before(rows: Rows, month, months: int, horizon: int) -> Rows:
    """The randomised rows a bank has matured by ``month``: the latest ``months`` cutoffs at
    least ``horizon`` months before it (their churn within the horizon is known by then)."""
    cutoffs = sorted(c for c in set(rows.cutoff) if months_between(c, month) >= horizon)
    return rows.take(np.isin(rows.cutoff, cutoffs[-months:]))


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


def ranked_places(rows: Rows) -> np.ndarray:
    """The rows of the would-be lists — called more often than not (p_treat > 0.5: treated or
    held back as control) — where the control compares like with like (docs/design.md §12).
    Rows drawn from below the cut have a small p_treat and the low churn of the customers a
    ranking passed over; pooled with them, a 2-point effect could be larger than the churn
    itself.
    Every row when there are no such places (a history of exploration only)."""
    places = rows.p_treat > RANKED_P_TREAT
    return places if places.any() else np.ones(len(rows), dtype=bool)


def history_power(rows: Rows, effect: float = 0.02) -> dict:
    """The randomised history against the power calculation for an average effect of
    ``effect`` in the would-be lists (:func:`ranked_places`: treated against control): rows,
    months, control customers and their churn, and — where a control with churners exists —
    the control customers needed and the months that takes at the present rate; ``problem``
    says why the history is not enough (None when it is).

    Beside the planned ``effect``: the effect the history shows (``observed_effect``, churn
    not called − churn called in the would-be lists, each weighted by its known probability,
    with a 95% interval: :func:`training.uplift_metrics.average_effect`) and the control
    customers that effect would need (``control_needed_observed``, when it is positive) — a
    bank whose calls save less than planned learns that it needs more months than the plan
    says."""
    places = ranked_places(rows)
    control = places & (rows.treated == 0)
    months = max(len(set(rows.cutoff)), 1)
    held = int(control.sum())
    base = float(rows.y[control].mean()) if held else float("nan")
    figures = {"randomised_rows": len(rows), "months": months, "control_rows": held,
               "control_churn": base, "control_needed": None, "months_needed": None}  # fmt: skip
    figures |= observed_effect(rows, places, control)
    if not held or held == places.sum():
        figures["problem"] = (
            f"{len(rows):,} randomised rows over {months} month(s), {held:,} held back: a "
            "control group and called customers are needed (lists with control_share > 0 for "
            "some months)"
        )
        return figures
    if base <= effect:
        figures["problem"] = (
            f"the {held:,} customers held back from the lists over {months} month(s) churned "
            f"{base:.1%}: a {effect:.0%}-point effect cannot be found among them — the lists "
            "call customers too safe to learn from"
        )
        return figures
    needed = power_needed(base, effect, held / places.sum())
    per_month = held / months
    figures |= {"control_needed": needed, "months_needed": int(np.ceil(needed / per_month))}
    figures["problem"] = None
    if held < needed:
        figures["problem"] = (
            f"{held:,} control customers over {months} month(s) (churn {base:.1%}): finding a "
            f"{effect:.0%}-point effect at 80% power needs {needed:,}, about "
            f"{figures['months_needed']} months at the present {per_month:,.0f} a month — keep "
            "the control group and exploration running, then train again"
            f"{observed_words(figures)}"
        )
    return figures


def observed_effect(rows: Rows, places: np.ndarray, control: np.ndarray) -> dict:
    """The effect the history shows in the would-be lists and what it would need (see
    :func:`history_power`)."""
    effect, low, high = average_effect(rows.y[places], rows.treated[places], rows.p_treat[places])
    held, treated = int(control.sum()), int((places & (rows.treated == 1)).sum())
    needed = None
    if held and treated and effect > 0:
        needed = power_needed(float(rows.y[control].mean()), effect, held / (held + treated))
    return {"observed_effect": effect, "observed_effect_low": low,
            "observed_effect_high": high, "control_needed_observed": needed}  # fmt: skip


def observed_words(figures: dict) -> str:
    """The observed effect in the words of the refusal."""
    effect = figures["observed_effect"]
    if not np.isfinite(effect):
        return ""
    shown = (
        f" (the history so far shows {effect:+.1%} "
        f"[{figures['observed_effect_low']:+.1%} … {figures['observed_effect_high']:+.1%}]"
    )
    if figures["control_needed_observed"] is None:
        return shown + ": no saving yet)"
    return shown + f"; at that effect {figures['control_needed_observed']:,} are needed)"


def check_history(rows: Rows, effect: float = 0.02) -> dict:
    """:func:`history_power`, raising :class:`UpliftHistoryError` with its problem when the
    history is not enough."""
    figures = history_power(rows, effect)
    problem = figures.pop("problem")
    if problem:
        raise UpliftHistoryError(problem)
    return figures
