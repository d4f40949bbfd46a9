"""Drift: the population stability index (PSI) of every feature and model score between a
reference and a current month, for the whole bank and by segment (tier, branch).

Bins come from the reference only:

- a numeric column with more distinct values than ``bins`` gets quantile bins of the reference;
  a value that holds at least 1/``bins`` of the rows (a point mass: 0 for a product most
  customers do not hold) is a bin of its own and the other values share the quantile bins;
- a numeric or boolean column with at most ``bins`` distinct values gets one bin per value
  (a current value the reference never had falls into the bin of the value below it);
- a text column gets one bin per category; categories with fewer than ``min_bin_count``
  reference rows, and categories the reference never saw, share one "other" bin;
- adjacent numeric bins are merged until each holds at least ``min_bin_count`` reference rows;
- missing values always have a bin of their own, so a column that starts arriving empty drifts.

``PSI = Σ (c − r) · ln(c / r)`` over the bins, with the reference share ``r`` and the current
share ``c`` floored at ``EPSILON`` (an empty bin would otherwise make PSI infinite).

PSI has a sampling floor: with no shift at all, ``PSI · (1/n + 1/m)⁻¹`` is about χ² with
``B − 1`` degrees of freedom, so a group of a few hundred customers shows PSI near 0.1 by chance.
Every result carries that floor (the 95th percentile); a segment smaller than
``min_group_size`` on either side, or whose floor reaches the watch band, is ``too small`` —
reported, never alarmed.

Every column is binned once into small integer codes (numpy, vectorised); the counts of all
segments then come from one ``bincount`` per column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from features.config import MonitoringPolicy

EPSILON = 1e-4
FLOOR_QUANTILE = 0.95
OK, WATCH, ACT, TOO_SMALL = "ok", "watch", "act", "too small"
ALL = "all"


@dataclass(frozen=True)
class Binning:
    """How one column is cut into bins, learned on the reference.

    ``edges`` are the inner edges of a numeric column (bin ``i`` holds
    ``edges[i-1] <= x < edges[i]``); ``categories`` the categories of a text column with a bin
    of their own. ``merge`` maps a raw bin code to its final bin (after merging sparse bins);
    the last two raw codes are "other" (text only) and "missing".
    """

    kind: str  # "numeric" or "category"
    edges: np.ndarray
    categories: tuple
    merge: np.ndarray
    labels: tuple[str, ...]

    @property
    def bins(self) -> int:
        return len(self.labels)

    def codes(self, values: pd.Series) -> np.ndarray:
        """The final bin of every value."""
        if self.kind == "numeric":
            x = as_numbers(values)
            raw = np.searchsorted(self.edges, x, side="right")
            raw[np.isnan(x)] = len(self.edges) + 2  # missing (len(edges) + 1 is unused: other)
        else:
            text = values.astype("string")
            raw = pd.Index(self.categories, dtype="string").get_indexer(text).astype(np.int64)
            missing = text.isna().to_numpy()
            raw[raw < 0] = len(self.categories)  # other
            raw[missing] = len(self.categories) + 1
        return self.merge[raw]


def as_numbers(values: pd.Series) -> np.ndarray:
    """A numeric or boolean column as float64, missing as NaN."""
    if values.dtype == object or str(values.dtype) == "boolean":
        values = pd.to_numeric(values.astype("float64"), errors="coerce")
    return np.asarray(values, dtype="float64")


def is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def fit_binning(reference: pd.Series, bins: int, min_bin_count: int) -> Binning:
    """Bins of ``reference`` for one column (see the module docstring)."""
    if is_numeric(reference):
        return _numeric_binning(as_numbers(reference), bins, min_bin_count)
    return _category_binning(reference, min_bin_count)


def _numeric_binning(x: np.ndarray, bins: int, min_bin_count: int) -> Binning:
    known = np.sort(x[~np.isnan(x)])
    if not len(known):
        edges = np.array([], dtype="float64")
    else:
        starts = np.flatnonzero(np.r_[True, known[1:] != known[:-1]])
        distinct = known[starts]
        if len(distinct) <= bins:
            edges = distinct[1:]  # one bin per value
        else:
            edges = _atom_and_quantile_edges(known, distinct, starts, bins)
    counts = np.bincount(np.searchsorted(edges, known, side="right"), minlength=len(edges) + 1)
    groups = _merge_adjacent(counts, min_bin_count)
    n_final = groups.max() + 1
    # raw codes: 0..len(edges) value bins, len(edges)+1 other (never used), len(edges)+2 missing
    merge = np.concatenate([groups, [n_final, n_final]])
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    labels = []
    for group in range(n_final):
        members = np.flatnonzero(groups == group)
        labels.append(f"[{_short(bounds[members[0]])}, {_short(bounds[members[-1] + 1])})")
    return Binning("numeric", edges, (), merge, (*labels, "missing"))


def _atom_and_quantile_edges(
    known: np.ndarray, distinct: np.ndarray, starts: np.ndarray, bins: int
) -> np.ndarray:
    """Inner edges for a sorted column with many values: a value held by at least 1/bins of
    the rows (an atom: 0 for a product most customers do not hold) gets a bin of its own, and
    the other values quantile bins of their own — otherwise the edges collapse onto the atom
    and a shift among the customers who hold the product goes unseen."""
    counts = np.diff(np.r_[starts, len(known)])
    atoms = distinct[counts >= len(known) / bins]
    rest = known[~np.isin(known, atoms)] if len(atoms) else known
    pieces = max(bins - len(atoms), 2)
    quantiles = np.quantile(rest, np.linspace(0, 1, pieces + 1)[1:-1]) if len(rest) else []
    return np.unique(np.concatenate([atoms, np.nextafter(atoms, np.inf), quantiles]))


def _merge_adjacent(counts: np.ndarray, minimum: int) -> np.ndarray:
    """Group index of each bin so that every group of adjacent bins holds ``minimum`` rows
    (the last group, if short, joins the one before)."""
    groups = np.zeros(len(counts), dtype=np.int64)
    group, held = 0, 0
    for i, count in enumerate(counts):
        groups[i] = group
        held += count
        if held >= minimum and i < len(counts) - 1:
            group, held = group + 1, 0
    if held < minimum and group > 0:
        groups[groups == group] = group - 1
    return groups


def _category_binning(values: pd.Series, min_bin_count: int) -> Binning:
    counts = values.astype("string").dropna().value_counts()
    kept = tuple(sorted(counts[counts >= min_bin_count].index))
    n = len(kept)
    merge = np.arange(n + 2, dtype=np.int64)  # each category, other, missing
    return Binning("category", np.array([]), kept, merge, (*map(str, kept), "other", "missing"))


def _short(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else ("−∞" if value < 0 else "∞")


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray:
    """PSI of count vectors (last axis = bins); shares floored at ``EPSILON``."""
    r = np.asarray(reference_counts, dtype="float64")
    c = np.asarray(current_counts, dtype="float64")
    r_share = np.maximum(r / np.maximum(r.sum(axis=-1, keepdims=True), 1), EPSILON)
    c_share = np.maximum(c / np.maximum(c.sum(axis=-1, keepdims=True), 1), EPSILON)
    return ((c_share - r_share) * np.log(c_share / r_share)).sum(axis=-1)


def sampling_floor(n: np.ndarray, m: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """95th percentile of PSI with no shift at all: ``(1/n + 1/m) · χ²₀.₉₅(B − 1)``."""
    n = np.maximum(np.asarray(n, dtype="float64"), 1)
    m = np.maximum(np.asarray(m, dtype="float64"), 1)
    dof = np.maximum(np.asarray(bins) - 1, 1)
    return (1 / n + 1 / m) * chi2.ppf(FLOOR_QUANTILE, dof)


def band(value: float, policy: MonitoringPolicy) -> str:
    if value >= policy.act:
        return ACT
    return WATCH if value >= policy.watch else OK


def drift_table(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: dict[str, str],
    policy: MonitoringPolicy,
    segments: list[str] | None = None,
    codes: dict[str, tuple] | None = None,
) -> pd.DataFrame:
    """PSI of every column in ``columns`` (name → kind, "feature" or "score") for the whole
    bank and for every value of each segment column present on both sides.

    One row per (column, segment): ``what``, ``kind``, ``segment`` ("all" or "tier=gold"),
    ``n_reference``, ``n_current``, ``bins`` (non-empty bins), ``psi``, ``floor`` and ``band``
    (ok / watch / act / too small). ``codes`` are the segments' codes when already computed
    (:func:`segment_codes`, cut to these rows).
    """
    seg_codes = codes if codes is not None else segment_codes(reference, current, segments)
    segments = list(seg_codes)
    rows = []
    for name, kind in columns.items():
        binning = fit_binning(reference[name], policy.bins, policy.min_bin_count)
        ref_codes, cur_codes = binning.codes(reference[name]), binning.codes(current[name])
        k = binning.bins
        splits = [(ALL, None, None, [ALL])]
        splits += [(s, *seg_codes[s]) for s in segments]
        for segment, ref_seg, cur_seg, values in splits:
            r = _counts(ref_codes, ref_seg, len(values), k)
            c = _counts(cur_codes, cur_seg, len(values), k)
            n, m = r.sum(axis=1), c.sum(axis=1)
            used = ((r + c) > 0).sum(axis=1)
            values_psi = psi(r, c)
            floors = sampling_floor(n, m, used)
            for i, value in enumerate(values):
                if segment != ALL and len(values) == 1 and n[i] == len(ref_codes):
                    continue  # one value for everybody (a bank with one branch): the whole bank
                small = segment != ALL and (
                    min(n[i], m[i]) < policy.min_group_size or floors[i] >= policy.watch
                )
                rows.append(
                    {
                        "what": name,
                        "kind": kind,
                        "segment": ALL if segment == ALL else f"{segment}={value}",
                        "n_reference": int(n[i]),
                        "n_current": int(m[i]),
                        "bins": int(used[i]),
                        "psi": float(values_psi[i]),
                        "floor": float(floors[i]),
                        "band": TOO_SMALL if small else band(float(values_psi[i]), policy),
                    }
                )
    return pd.DataFrame(rows)


def segment_codes(
    reference: pd.DataFrame, current: pd.DataFrame, segments: list[str] | None
) -> dict[str, tuple]:
    """For each segment column present on both sides: integer codes of its values on each
    side, over the union of its values (missing → −1, left out of every segment), and the
    values themselves."""
    out = {}
    for name in segments or []:
        if name not in reference or name not in current:
            continue
        both = pd.concat([reference[name], current[name]], ignore_index=True)
        codes, values = pd.factorize(both, sort=True)
        codes = codes.astype(np.int64)
        out[name] = (codes[: len(reference)], codes[len(reference) :], [str(v) for v in values])
    return out


def _counts(codes: np.ndarray, segment: np.ndarray | None, groups: int, bins: int) -> np.ndarray:
    """Counts per (segment value, bin): one bincount."""
    if segment is None:
        return np.bincount(codes, minlength=bins).reshape(1, bins)
    keep = segment >= 0
    flat = segment[keep] * bins + codes[keep]
    return np.bincount(flat, minlength=groups * bins).reshape(groups, bins)


def score_histograms(
    reference: pd.Series, current: pd.Series, bins: int = 20
) -> dict[str, list[float]]:
    """Shares of a probability score in ``bins`` equal-width bins on [0, 1], both sides (for the
    report's distribution plots)."""
    edges = np.linspace(0, 1, bins + 1)
    out = {"edges": edges.tolist()}
    for side, values in (("reference", reference), ("current", current)):
        x = as_numbers(values)
        x = x[~np.isnan(x)]
        counts, _ = np.histogram(np.clip(x, 0, 1), edges)
        out[side] = (counts / max(len(x), 1)).tolist()
    return out
