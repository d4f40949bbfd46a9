"""What retain predicts, and every name each prediction goes by (docs/design.md §5).

A :class:`Target` is one prediction task: churn, a tier upgrade, or buying one product. The
same task is called by several names on its way through the chain — its label column in the
feature file, its registered model, its score column, the ``holds_`` column that says who may
buy it, the truth column of the synthetic bank — and this module is the only place those names
are made or read back. Nothing else builds them by string surgery.

=================  ==================  =========================  ===================
target             model               label / score              truth (horizon h)
=================  ==================  =========================  ===================
churn              ``churn``           ``label_churn`` /          ``truth_p_churn_hm``
                                       ``p_churn``
tier upgrade       ``upgrade``         ``label_upgrade`` /        ``truth_p_upgrade_hm``
                                       ``p_upgrade``
buying product p   ``cross_sell_p``    ``label_cross_sell_p`` /   ``truth_p_buy_hm_p``
                                       ``propensity_p``
=================  ==================  =========================  ===================

A synthetic bank with a campaign also has churn's probability if assigned a call,
``truth_p_churn_hm_called`` (:meth:`Target.truth_called`), and the response type to a call,
``truth_response_type``.

Who each target is defined for (its *population*) is here too, written once over column
lookups so that the feature build (Ibis expressions) and monitoring (pandas frames) apply the
same rule: churn — ``eligible_churn`` (features/labels.py: the churn rule); upgrade — below the
top tier; buying p — not holding p at the cutoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["churn", "upgrade", "cross_sell"]

LABEL_PREFIX = "label_"
HOLDS_PREFIX = "holds_"
TRUTH_PREFIX = "truth_"
MODEL_VERSION_PREFIX = "model_version_"
CALLED_SUFFIX = "_called"  # the truth's churn probability if assigned a call (docs/design.md §14)
RESPONSE_TYPE = "response_type"  # the truth's response type to a call (docs/design.md §14)
ELIGIBLE_CHURN = "eligible_churn"
TIER_LEVEL = "tier_level"
CROSS_SELL = "cross_sell_"
PROPENSITY = "propensity_"


@dataclass(frozen=True, order=True)
class Target:
    """One prediction task. ``product`` only for ``cross_sell``."""

    kind: Kind
    product: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "cross_sell") != (self.product is not None):
            raise ValueError(
                f"a {self.kind} target {'needs' if self.product is None else 'has no'} product"
            )

    # ------------------------------------------------------------------ names

    @property
    def model(self) -> str:
        """The registered model's name."""
        return f"{CROSS_SELL}{self.product}" if self.kind == "cross_sell" else self.kind

    @property
    def label(self) -> str:
        """The label column of the feature file."""
        return f"{LABEL_PREFIX}{self.model}"

    @property
    def score(self) -> str:
        """The score column of ``scores.parquet`` (and of a scored frame)."""
        return f"{PROPENSITY}{self.product}" if self.kind == "cross_sell" else f"p_{self.kind}"

    @property
    def holds(self) -> str | None:
        """The feature file's column that says a customer holds the product (cross-sell)."""
        return holds_column(self.product) if self.product is not None else None

    def truth(self, horizon_months: int) -> str:
        """The feature file's column of the synthetic truth's probability of this target
        within the horizon."""
        return truth_column(self.truth_source(horizon_months))

    def truth_source(self, horizon_months: int) -> str:
        """The truth table's column :meth:`truth` is read from (``p_churn_3m``)."""
        h = f"{horizon_months}m"
        if self.kind == "cross_sell":
            return f"p_buy_{h}_{self.product}"
        return f"p_{self.kind}_{h}"

    def truth_called(self, horizon_months: int) -> str:
        """The feature file's column of the truth's probability if assigned a call at the
        cutoff (churn only: a synthetic bank with a campaign, docs/design.md §14)."""
        return truth_column(self.truth_called_source(horizon_months))

    def truth_called_source(self, horizon_months: int) -> str:
        """The truth table's column :meth:`truth_called` is read from
        (``p_churn_3m_called``)."""
        if self.kind != "churn":
            raise ValueError(f"only churn has a call's effect in the truth, not {self.kind}")
        return f"{self.truth_source(horizon_months)}{CALLED_SUFFIX}"

    # ------------------------------------------------------------------ population

    def population(self, column: Callable[[str], Any], tier_count: int) -> Any:
        """Who this target is defined for, from ``column(name)`` lookups: Ibis expressions
        in the feature build, filled pandas columns in :func:`population_mask`.
        ``tier_count`` is the number of tiers on the ladder."""
        if self.kind == "churn":
            return column(ELIGIBLE_CHURN)
        if self.kind == "upgrade":
            return column(TIER_LEVEL) < tier_count - 1
        return ~column(self.holds)

    def population_mask(self, frame: pd.DataFrame, tier_count: int) -> np.ndarray:
        """:meth:`population` over a frame of features: rows whose membership cannot be told
        (a missing column or value) are outside."""
        needed = {"churn": ELIGIBLE_CHURN, "upgrade": TIER_LEVEL}.get(self.kind, self.holds)
        if needed not in frame:
            return np.zeros(len(frame), dtype=bool)

        def column(name: str):
            values = frame[name]
            if name == TIER_LEVEL:
                return values.astype("float64").fillna(np.inf)
            # unknown eligibility: not eligible; unknown holding: treated as held
            return values.fillna(name != ELIGIBLE_CHURN).astype(bool)

        return np.asarray(self.population(column, tier_count), dtype=bool)

    def describe(self, horizon_months: int, churn_rule: str) -> str:
        """The label in words (model cards, run records)."""
        if self.kind == "churn":
            return churn_rule
        if self.kind == "upgrade":
            return f"tier {horizon_months} months after the cutoff higher than at the cutoff"
        return (
            f"{self.product}: not held at the cutoff, held (open) in any month of the next "
            f"{horizon_months}"
        )


CHURN = Target("churn")
UPGRADE = Target("upgrade")


def cross_sell(product: str) -> Target:
    return Target("cross_sell", product)


def holds_column(product: str) -> str:
    return f"{HOLDS_PREFIX}{product}"


def truth_column(name: str) -> str:
    """The feature file's column for the truth table's column ``name``."""
    return f"{TRUTH_PREFIX}{name}"


def held_products(columns: Iterable[str]) -> list[str]:
    """The products a frame has ``holds_`` columns for, in its order."""
    return [c.removeprefix(HOLDS_PREFIX) for c in columns if c.startswith(HOLDS_PREFIX)]


# what `retain train --task` trains: each target, or all of them (``training.run.targets_for``)
TASKS = ("churn", "cross_sell", "upgrade", "all")


def all_targets(products: Iterable[str]) -> list[Target]:
    """Churn, one cross-sell target per product, upgrade — the order models are trained in."""
    return [CHURN, *(cross_sell(p) for p in products), UPGRADE]


def from_model(name: str) -> Target | None:
    """The target of a registered model name (None for a name retain does not make)."""
    if name.startswith(CROSS_SELL) and len(name) > len(CROSS_SELL):
        return cross_sell(name.removeprefix(CROSS_SELL))
    return {"churn": CHURN, "upgrade": UPGRADE}.get(name)


def from_label(name: str) -> Target | None:
    return from_model(name.removeprefix(LABEL_PREFIX)) if name.startswith(LABEL_PREFIX) else None


def from_score(name: str) -> Target | None:
    if name.startswith(PROPENSITY) and len(name) > len(PROPENSITY):
        return cross_sell(name.removeprefix(PROPENSITY))
    return {"p_churn": CHURN, "p_upgrade": UPGRADE}.get(name)


def label_columns(columns: Iterable[str]) -> list[Target]:
    """The targets whose label columns a frame has, in its order."""
    return [t for c in columns if (t := from_label(c)) is not None]


def score_columns(columns: Iterable[str]) -> list[str]:
    """The score columns among ``columns`` (``p_churn``, ``p_upgrade``, ``propensity_<p>``)."""
    return [c for c in columns if from_score(c) is not None]


def model_versions(columns: Iterable[str], first_row: Callable[[str], Any]) -> dict[str, str]:
    """``{model: version}`` from a scores frame's ``model_version_<model>`` columns."""
    return {
        c.removeprefix(MODEL_VERSION_PREFIX): str(first_row(c))
        for c in columns
        if c.startswith(MODEL_VERSION_PREFIX)
    }


def version_column(model: str) -> str:
    return f"{MODEL_VERSION_PREFIX}{model}"
