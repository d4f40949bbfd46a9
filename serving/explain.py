"""Why a customer scores high: TreeSHAP contributions grouped into reasons an RM can use.

Pure functions over arrays. Contributions are LightGBM's path-dependent TreeSHAP, in log-odds,
computed from tables of each tree (``models.tree_shap``: the same values as
``pred_contrib=True``, seven to nine times faster on retain's shallow trees). Features that
express one cause share a ``reason_group`` in the catalog and become one reason: their
contributions are summed, and a member speaks for the group ("AUM down 35% over the last 3
months", not three separate lines about AUM). Only groups that push the score *up* become
reasons, and a sensitive feature (age, city tier) never does.

For churn (``actionable=True``, docs/design.md §12) a group is a reason only when one of its
members is something an RM can act on (catalog ``actionable``) *and* its value points the risky way
("AUM up 27%" is never a reason to leave): the strongest such member speaks. A customer with
no such reason gets the strongest other cause, marked as context. For a growth offer
(``growth=True``) a cause speaks only through a member that can say why an offer fits (catalog
``growth``) with a value that makes it fit ("AUM up 12%", never a bare tier or a risk fact);
a customer with none gets fewer reasons, never a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.catalog import LANGUAGES, Feature, catalog
from features.config import Product
from models.boosters import lgb
from models.tree_shap import tree_shap

TOP_K = 3


@dataclass(frozen=True)
class ReasonGroups:
    """How the model's input columns fold into reasons.

    ``member[i]`` is the index into ``names`` of feature ``i``'s group, or -1 for a feature
    that is never shown (sensitive, or not in the catalog).
    """

    features: tuple[str, ...]
    names: tuple[str, ...]
    drivers: tuple[str | None, ...]
    member: np.ndarray
    entries: dict[str, Feature]

    @classmethod
    def for_features(
        cls, features: list[str] | tuple[str, ...], products: tuple[Product, ...] = ()
    ) -> ReasonGroups:
        """``products``: the catalogue the model was trained with (names its balances)."""
        entries = catalog(products)
        names: list[str] = []
        drivers: list[str | None] = []
        member = np.full(len(features), -1, dtype=np.int64)
        for i, name in enumerate(features):
            entry = entries.get(name)
            if entry is None or entry.sensitive:
                continue
            if entry.reason_group not in names:
                names.append(entry.reason_group)
                drivers.append(entry.driver)
            j = names.index(entry.reason_group)
            drivers[j] = drivers[j] or entry.driver
            member[i] = j
        return cls(tuple(features), tuple(names), tuple(drivers), member, entries)


@dataclass(frozen=True)
class Reasons:
    """The top-k reasons of some rows, as arrays (row × rank); -1 / NaN where there is none."""

    rows: np.ndarray  # positions of the explained rows in the scored frame
    feature: np.ndarray  # (n, k) index into groups.features
    group: np.ndarray  # (n, k) index into groups.names
    value: np.ndarray  # (n, k) the speaking feature's value
    contribution: np.ndarray  # (n, k) summed log-odds contribution of the group
    groups: ReasonGroups
    context: np.ndarray | None = None  # (n, k) True where a reason is context, not actionable
    growth: bool = False  # why a growth offer fits (the catalog's growth texts), not churn

    def between(self, start: int, stop: int) -> Reasons:
        """The reasons of rows ``start`` to ``stop`` (excluded), as positions from ``start``:
        one batch's share of a whole frame's reasons."""
        keep = (self.rows >= start) & (self.rows < stop)
        return replace(
            self,
            rows=self.rows[keep] - start,
            feature=self.feature[keep],
            group=self.group[keep],
            value=self.value[keep],
            contribution=self.contribution[keep],
            context=None if self.context is None else self.context[keep],
        )

    def is_context(self, rank: int) -> np.ndarray:
        n = self.feature.shape[0]
        return self.context[:, rank] if self.context is not None else np.zeros(n, dtype=bool)

    def feature_names(self, rank: int) -> list[str | None]:
        return [self.groups.features[i] if i >= 0 else None for i in self.feature[:, rank]]

    def drivers(self) -> list[set[str]]:
        """The truth drivers each row's actionable reasons evidence (context is not counted)."""
        context = self.context if self.context is not None else np.zeros(self.group.shape, bool)
        return [
            {
                self.groups.drivers[g]
                for g, c in zip(row, marks, strict=True)
                if g >= 0 and not c and self.groups.drivers[g]
            }
            for row, marks in zip(self.group, context, strict=True)
        ]

    def evidence(self, driver: np.ndarray) -> np.ndarray:
        """Per explained row: is ``driver`` (the row's true churn driver) among the drivers its
        actionable reasons evidence — :meth:`drivers` as one array comparison (a third of a
        million rows on a 1M bank)."""
        known = np.array([*(d or None for d in self.groups.drivers), None], dtype=object)
        shown = known[self.group]  # a group of -1 (no reason) reads the None at the end
        if self.context is not None:
            shown = np.where(self.context, None, shown)
        return ((shown == driver[:, None]) & (shown != None)).any(axis=1)  # noqa: E711

    def texts(self, rank: int, lang: str) -> list[str | None]:
        """Rendered reason text at ``rank`` (0-based) for every explained row.

        Each (feature, value, context) is rendered once: a third of the 680k reasons of a 1M
        bank were distinct, and rendering, not TreeSHAP, was most of their time. Values are
        told apart by their bits (-0.0 is not 0.0)."""
        entries, names = self.groups.entries, self.groups.features
        values = np.ascontiguousarray(self.value[:, rank], dtype=np.float64)
        keys = zip(
            self.feature[:, rank].tolist(),
            values.view(np.int64).tolist(),
            self.is_context(rank).tolist(),
            strict=True,
        )
        rendered: dict[tuple, str | None] = {}
        out = []
        for key, value in zip(keys, values.tolist(), strict=True):
            if key not in rendered:
                f, _, context = key
                rendered[key] = (
                    render(entries[names[f]], value, lang, context, self.growth) if f >= 0 else None
                )
            out.append(rendered[key])
        return out

    def records(self, position: int) -> list[dict]:
        """Reasons of the ``position``-th explained row as dicts, both languages."""
        entries = self.groups.entries
        out = []
        for rank in range(self.feature.shape[1]):
            f = self.feature[position, rank]
            if f < 0:
                break
            entry, value = entries[self.groups.features[f]], self.value[position, rank]
            out.append(
                {
                    "feature": entry.name,
                    "group": self.groups.names[self.group[position, rank]],
                    "value": None if np.isnan(value) else float(value),
                    "contribution": float(self.contribution[position, rank]),
                    "context": bool(self.is_context(rank)[position]),
                    **{
                        f"text_{lang}": render(
                            entry, value, lang, self.is_context(rank)[position], self.growth
                        )
                        for lang in LANGUAGES
                    },
                }
            )
        return out


CONTEXT_MARK = {"zh": "（背景）", "en": "(context) "}


def render(
    entry: Feature, value: float, lang: str, context: bool = False, growth: bool = False
) -> str:
    """A reason's text: why the customer may leave, or with ``growth`` why an offer fits."""
    shown = bool(value) if entry.dtype == "bool" and not np.isnan(value) else value
    text = (entry.growth_reason(shown, lang) or "") if growth else entry.reason(shown, lang)
    return CONTEXT_MARK[lang] + text if context else text


def risky_side(entries: list[Feature | None], values: np.ndarray) -> np.ndarray:
    """(rows × features) True where a feature is actionable and its value points the way that
    raises churn risk: a fall for changes read as "down", the risky side of a yes/no."""
    ok = np.zeros(values.shape, dtype=bool)
    for i, entry in enumerate(entries):
        if entry is None or not entry.actionable or entry.sensitive:
            continue
        v = values[:, i]
        if entry.dtype == "bool":
            ok[:, i] = (v == 1) if entry.direction > 0 else (v == 0)
        elif entry.reason_value == "negate":
            ok[:, i] = v < 0
        elif entry.direction > 0:  # more is riskier: none at all is not a risk
            ok[:, i] = v > 0
        else:
            ok[:, i] = ~np.isnan(v) if entry.direction != 0 else False
    return ok


def growth_side(entries: list[Feature | None], values: np.ndarray) -> np.ndarray:
    """(rows × features) True where a feature can say why a growth offer fits and its value
    is one that does (catalog ``growth``)."""
    ok = np.zeros(values.shape, dtype=bool)
    for i, entry in enumerate(entries):
        if entry is not None and entry.growth is not None and not entry.sensitive:
            ok[:, i] = entry.growth.fits(values[:, i])
    return ok


def inputs(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The model inputs as one float64 matrix: booleans 0/1, missing values NaN."""
    return frame[list(features)].to_numpy(dtype=np.float64, na_value=np.nan)


def contributions(booster: lgb.Booster, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Per-row, per-feature TreeSHAP contributions in log-odds (the bias column dropped)."""
    return tree_shap(booster, inputs(frame, features))


def top_reasons(
    contrib: np.ndarray,
    values: np.ndarray,
    groups: ReasonGroups,
    k: int = TOP_K,
    rows: np.ndarray | None = None,
    actionable: bool = False,
    growth: bool = False,
) -> Reasons:
    """The ``k`` groups that push each row's score up the most.

    ``contrib`` and ``values`` are (rows × features) in the order of ``groups.features``;
    ``rows`` says which rows of the scored frame these are (default: all of them, in order).
    With ``actionable``, only groups with an actionable member on its risky side, and the
    strongest other cause as context for a row that has none. With ``growth``, only groups
    with a member that says why an offer fits, on the side that fits.
    """
    n = contrib.shape[0]
    n_groups = len(groups.names)
    entries = [
        groups.entries.get(f) if groups.member[i] >= 0 else None
        for i, f in enumerate(groups.features)
    ]
    if growth:
        may_speak = growth_side(entries, values)
    elif actionable:
        may_speak = risky_side(entries, values)
    else:
        may_speak = np.ones(values.shape, bool)
    summed = np.full((n, n_groups), -np.inf)
    speaker = np.full((n, n_groups), -1, dtype=np.int64)
    fallback = np.full((n, n_groups), -1, dtype=np.int64)
    for j in range(n_groups):
        cols = np.flatnonzero(groups.member == j)
        part = contrib[:, cols]
        summed[:, j] = part.sum(axis=1)
        fallback[:, j] = cols[np.argmax(part, axis=1)]
        allowed = np.where(may_speak[:, cols], part, -np.inf)
        speaker[:, j] = np.where(
            np.isfinite(allowed).any(axis=1), cols[np.argmax(allowed, axis=1)], -1
        )
    k = min(k, n_groups)
    eligible = np.where((speaker >= 0) & (summed > 0), summed, -np.inf)
    order = np.argsort(-eligible, axis=1, kind="stable")[:, :k]
    shown = np.isfinite(np.take_along_axis(eligible, order, axis=1))
    feature = np.where(shown, np.take_along_axis(speaker, order, axis=1), -1)
    group = np.where(shown, order, -1)
    top = np.where(shown, np.take_along_axis(summed, order, axis=1), np.nan)
    context = np.zeros((n, k), dtype=bool)
    if actionable:  # nothing actionable: the strongest other cause, marked as context
        none = ~shown[:, 0]
        strongest = np.argmax(summed, axis=1)
        has = none & (summed[np.arange(n), strongest] > 0)
        feature[has, 0] = fallback[has, strongest[has]]
        group[has, 0] = strongest[has]
        top[has, 0] = summed[has, strongest[has]]
        context[has, 0] = True
    safe = np.where(feature >= 0, feature, 0)
    value = np.where(feature >= 0, np.take_along_axis(values, safe, axis=1), np.nan)
    return Reasons(
        rows=np.arange(n) if rows is None else np.asarray(rows),
        feature=feature,
        group=group,
        value=value,
        contribution=top,
        groups=groups,
        context=context,
        growth=growth,
    )


def explain(
    booster: lgb.Booster,
    frame: pd.DataFrame,
    features: list[str],
    rows: np.ndarray | None = None,
    k: int = TOP_K,
    products: tuple[Product, ...] = (),
    actionable: bool = False,
    growth: bool = False,
) -> Reasons:
    """Top-k reasons for ``rows`` (positions in ``frame``; default all) of a booster's score;
    ``growth``: why a growth offer fits, in the catalog's growth words."""
    part = frame if rows is None else frame.iloc[np.asarray(rows)]
    rows = np.arange(len(frame)) if rows is None else np.asarray(rows)
    values = inputs(part, features)
    contrib = tree_shap(booster, values) if len(part) else values * 0.0
    groups = ReasonGroups.for_features(features, products)
    return top_reasons(contrib, values, groups, k, rows, actionable, growth)


def reason_columns(reasons: Reasons, n_rows: int, langs: tuple[str, ...] = LANGUAGES) -> dict:
    """Structured reason columns for a frame of ``n_rows`` rows (empty where not explained)."""
    columns: dict[str, np.ndarray] = {}
    for rank in range(reasons.feature.shape[1]):
        prefix = f"reason_{rank + 1}"
        feature = np.full(n_rows, None, dtype=object)
        feature[reasons.rows] = reasons.feature_names(rank)
        value = np.full(n_rows, np.nan)
        value[reasons.rows] = reasons.value[:, rank]
        contribution = np.full(n_rows, np.nan)
        contribution[reasons.rows] = reasons.contribution[:, rank]
        context = np.zeros(n_rows, dtype=bool)
        context[reasons.rows] = reasons.is_context(rank)
        columns |= {
            f"{prefix}_feature": feature,
            f"{prefix}_value": value,
            f"{prefix}_contribution": contribution,
            f"{prefix}_context": context,
        }
        for lang in langs:
            text = np.full(n_rows, None, dtype=object)
            text[reasons.rows] = reasons.texts(rank, lang)
            columns[f"{prefix}_text_{lang}"] = text
    return columns
