"""Diagnostic plots for a trained model: each function draws one PNG, writes it, returns the path.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so
no global backend or figure registry is touched and the functions are safe to call from worker
threads. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from training.evaluate import calibration_bin, ece

DPI = 110
CONTACT_SHARE = 0.10
SHAP_SAMPLE_ROWS = 5_000
TITLE_SIZE = 13
LABEL_SIZE = 11


def plot_roc(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    path: str | Path,
    title: str = "ROC curve — test set",
) -> Path:
    """ROC curves of several scorers on the same rows, with their AUC in the legend.

    Parameters
    ----------
    y_true : array of 0/1 labels.
    scores : scorer name -> scores (higher means more likely positive), drawn in this order;
        the first one (the model) is drawn thickest.
    path : where the PNG goes.
    title : figure title.
    """
    y = _binary_labels(y_true)
    scores = _checked_scores(scores, len(y))
    fig = _figure(6.4, 5.6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="random (0.5000)")
    for rank, (name, score) in enumerate(scores.items()):
        fpr, tpr, _ = roc_curve(y, score)
        auc = roc_auc_score(y, score)
        ax.plot(fpr, tpr, **_line_style(name, rank), label=f"{name} ({auc:.4f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate", fontsize=LABEL_SIZE)
    ax.set_ylabel("true positive rate (recall)", fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.grid(alpha=0.3)
    ax.legend(title="scorer (AUC)", loc="lower right", fontsize=9)
    return _save(fig, path)


def plot_gains(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    path: str | Path,
    title: str = "Cumulative gains — test set",
) -> Path:
    """Cumulative gains of several scorers, and lift by decile of the first one.

    Left panel: share of all positives captured when the top x% by score are contacted, with the
    random and perfect lines and a mark at 10% contacted (the legend gives each scorer's capture
    there). Right panel: lift of each score decile of the first scorer over the base rate. Tied
    scores are treated as contacted together (gains interpolate linearly across a tie), so a
    coarse rule-of-thumb score is not flattered by the row order.
    """
    y = _binary_labels(y_true)
    scores = _checked_scores(scores, len(y))
    base_rate = y.mean()
    fig = _figure(12.0, 5.2)
    gains_ax, lift_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})

    gains_ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="random")
    gains_ax.plot(
        [0, base_rate, 1], [0, 1, 1], color="#bbbbbb", linestyle=":", linewidth=1, label="perfect"
    )
    for rank, (name, score) in enumerate(scores.items()):
        contacted, captured = _gains_curve(y, score)
        at_mark = np.interp(CONTACT_SHARE, contacted, captured)
        style = _line_style(name, rank)
        gains_ax.plot(
            contacted, captured, **style, label=f"{name} ({at_mark:.0%} in top {CONTACT_SHARE:.0%})"
        )
        gains_ax.plot([CONTACT_SHARE], [at_mark], marker="o", color=style["color"], markersize=5)
    gains_ax.axvline(CONTACT_SHARE, color="#555555", linewidth=0.8, linestyle="-.")
    gains_ax.text(
        CONTACT_SHARE + 0.01, 0.03, f"{CONTACT_SHARE:.0%} contacted", fontsize=9, color="#555555"
    )
    gains_ax.set_xlim(0, 1)
    gains_ax.set_ylim(0, 1.01)
    gains_ax.xaxis.set_major_formatter("{x:.0%}")
    gains_ax.yaxis.set_major_formatter("{x:.0%}")
    gains_ax.set_xlabel("customers contacted (highest scores first)", fontsize=LABEL_SIZE)
    gains_ax.set_ylabel("positives captured", fontsize=LABEL_SIZE)
    gains_ax.set_title(title, fontsize=TITLE_SIZE)
    gains_ax.grid(alpha=0.3)
    gains_ax.legend(loc="lower right", fontsize=9)

    first_name, first_score = next(iter(scores.items()))
    contacted, captured = _gains_curve(y, first_score)
    edges = np.interp(np.linspace(0, 1, 11), contacted, captured)
    lift = 10 * np.diff(edges)
    deciles = np.arange(1, 11)
    bars = lift_ax.bar(deciles, lift, color="#1f77b4", width=0.75)
    lift_ax.bar_label(bars, labels=[f"{v:.2f}" for v in lift], fontsize=8, padding=2)
    lift_ax.axhline(1.0, color="#999999", linestyle="--", linewidth=1, label="base rate")
    lift_ax.set_xticks(deciles)
    lift_ax.set_xlabel("score decile (1 = highest scores)", fontsize=LABEL_SIZE)
    lift_ax.set_ylabel(f"lift over base rate ({base_rate:.1%})", fontsize=LABEL_SIZE)
    lift_ax.set_title(f"Lift by decile — {first_name}", fontsize=TITLE_SIZE)
    lift_ax.set_ylim(0, max(lift.max(), 1.0) * 1.12)
    lift_ax.grid(axis="y", alpha=0.3)
    lift_ax.legend(loc="upper right", fontsize=9)
    return _save(fig, path)


def plot_calibration(
    y_true: np.ndarray,
    p: np.ndarray,
    path: str | Path,
    bins: int = 10,
    title: str = "Calibration — test set",
) -> Path:
    """Reliability diagram over equal-width bins with the bin counts below; ECE in the title.

    Bins and ECE are ``training.evaluate``'s, so the title shows the ECE reported with the
    metrics.
    """
    y = _binary_labels(y_true, need_both=False)
    p = _probabilities(p, len(y))
    counts, mean_p, observed = _calibration_bins(y, p, bins)
    error = ece(y, p, bins)
    filled = counts > 0

    fig = _figure(6.4, 7.0)
    reliability_ax, count_ax = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    reliability_ax.plot(
        [0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfectly calibrated"
    )
    reliability_ax.plot(
        mean_p[filled], observed[filled], marker="o", color="#1f77b4", linewidth=2, label="model"
    )
    reliability_ax.set_xlim(0, 1)
    reliability_ax.set_ylim(0, 1.01)
    reliability_ax.set_ylabel("observed positive rate", fontsize=LABEL_SIZE)
    reliability_ax.set_title(
        f"{title}\nECE {error:.4f} ({bins} equal-width bins)", fontsize=TITLE_SIZE
    )
    reliability_ax.grid(alpha=0.3)
    reliability_ax.legend(loc="upper left", fontsize=9)

    width = 1.0 / bins
    centres = (np.arange(bins) + 0.5) * width
    count_ax.bar(centres, counts, width=width * 0.9, color="#7f7f7f")
    if filled.any() and counts[filled].max() > 50 * counts[filled].min():
        count_ax.set_yscale("log")
        count_ax.set_ylabel("customers (log)", fontsize=LABEL_SIZE)
    else:
        count_ax.set_ylabel("customers", fontsize=LABEL_SIZE)
    count_ax.set_xlabel("predicted probability", fontsize=LABEL_SIZE)
    count_ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_importance(
    names: Sequence[str],
    gain: np.ndarray,
    path: str | Path,
    top: int = 20,
    title: str = "Feature importance (gain)",
) -> Path:
    """Horizontal bars of the ``top`` features by total split gain, as a share of all gain."""
    gain = np.asarray(gain, dtype="float64")
    if len(names) != len(gain):
        raise ValueError(
            f"plot_importance: {len(names)} feature names but {len(gain)} gain values; pass "
            "booster.feature_name() with booster.feature_importance('gain')"
        )
    if len(gain) == 0:
        raise ValueError("plot_importance: no features to plot")
    total = gain.sum()
    share = gain / total if total > 0 else np.zeros_like(gain)
    order = np.argsort(-gain, kind="stable")[:top][::-1]
    fig = _figure(7.5, 1.2 + 0.32 * len(order))
    ax = fig.add_subplot()
    bars = ax.barh([names[i] for i in order], share[order], color="#1f77b4")
    ax.bar_label(bars, labels=[f"{share[i]:.1%}" for i in order], fontsize=8, padding=2)
    ax.xaxis.set_major_formatter("{x:.0%}")
    ax.set_xlim(0, max(share.max(), 0.01) * 1.15)
    ax.set_xlabel("share of total gain", fontsize=LABEL_SIZE)
    shown = f"top {len(order)} of {len(gain)} features"
    ax.set_title(f"{title}\n{shown}", fontsize=TITLE_SIZE)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_shap_summary(
    contributions: np.ndarray,
    features: pd.DataFrame,
    path: str | Path,
    max_display: int = 20,
    sample_rows: int = SHAP_SAMPLE_ROWS,
    seed: int = 0,
) -> Path:
    """SHAP beeswarm drawn by the shap library from precomputed contributions.

    Parameters
    ----------
    contributions : LightGBM ``predict(features, pred_contrib=True)`` output: one column per
        feature, then the bias (expected value) as the last column.
    features : the rows that were explained; category and text columns are coloured by code.
    path : where the PNG goes.
    max_display : features shown; the rest are summed into one row.
    sample_rows : at most this many rows are drawn (a seeded sample), which keeps it fast.
    seed : seed of that sample.
    """
    import shap  # heavy import (numba, scipy.sparse...): paid only when this plot is drawn

    contributions = np.asarray(contributions, dtype="float64")
    if contributions.ndim != 2 or contributions.shape != (len(features), features.shape[1] + 1):
        raise ValueError(
            f"plot_shap_summary: contributions have shape {contributions.shape} but "
            f"{len(features)} rows × {features.shape[1]} features need "
            f"({len(features)}, {features.shape[1] + 1}) — pass booster.predict(features, "
            "pred_contrib=True) for a binary model, bias in the last column"
        )
    if len(features) > sample_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(features), sample_rows, False))
        contributions, features = contributions[rows], features.iloc[rows]
    explanation = shap.Explanation(
        values=contributions[:, :-1],
        base_values=contributions[:, -1],
        data=_numeric_for_colour(features),
        feature_names=[str(c) for c in features.columns],
    )
    shown = min(max_display, features.shape[1])
    fig = _figure(8.0, 0.4 * shown + 1.8)  # shap's own "auto" size, which it refuses with an ax
    ax = fig.add_subplot()
    # shap draws only on the axes it is given, but jitters the dots with the global numpy RNG:
    # seed it for a reproducible picture and restore it afterwards
    global_rng = np.random.get_state()
    np.random.seed(seed)
    try:
        shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    finally:
        np.random.set_state(global_rng)
    ax.set_title(f"SHAP contributions ({len(features):,} customers)", fontsize=TITLE_SIZE)
    return _save(fig, path)


def plot_backtest(
    cutoffs: Sequence[object],
    auc: Sequence[float],
    ece: Sequence[float],
    path: str | Path,
    ece_limit: float | None = None,
    title: str = "Back-test by cutoff",
) -> Path:
    """AUC and ECE per out-of-time cutoff in two panels, for model-risk review.

    ``ece_limit``, when given, is drawn as the agreed ceiling on the ECE panel.
    """
    if not len(cutoffs) == len(auc) == len(ece):
        raise ValueError(
            f"plot_backtest: {len(cutoffs)} cutoffs, {len(auc)} AUC and {len(ece)} ECE values; "
            "pass one AUC and one ECE per cutoff"
        )
    if len(cutoffs) == 0:
        raise ValueError("plot_backtest: no cutoffs to plot")
    labels = [_cutoff_label(c) for c in cutoffs]
    x = np.arange(len(labels))
    fig = _figure(max(6.4, 0.55 * len(labels) + 2), 6.4)
    auc_ax, ece_ax = fig.subplots(2, 1, sharex=True)
    auc_ax.plot(x, auc, marker="o", color="#1f77b4", linewidth=2)
    for xi, value in zip(x, auc, strict=True):
        auc_ax.annotate(
            f"{value:.4f}",
            (xi, value),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
        )
    auc_ax.set_ylabel("ROC AUC", fontsize=LABEL_SIZE)
    auc_ax.set_title(title, fontsize=TITLE_SIZE)
    auc_ax.grid(alpha=0.3)
    low, high = np.nanmin(auc), np.nanmax(auc)
    auc_ax.set_ylim(low - 0.05 * max(high - low, 0.1), high + 0.08 * max(high - low, 0.1))

    ece_ax.plot(x, ece, marker="s", color="#d62728", linewidth=2, label="ECE")
    if ece_limit is not None:
        ece_ax.axhline(
            ece_limit, color="#555555", linestyle="--", linewidth=1, label=f"limit {ece_limit:.3f}"
        )
        ece_ax.legend(loc="upper left", fontsize=9)
    ece_ax.set_ylabel("ECE (lower is better)", fontsize=LABEL_SIZE)
    ece_ax.set_ylim(0, max(np.nanmax(ece), ece_limit or 0.0) * 1.25 + 1e-3)
    ece_ax.set_xlabel("cutoff", fontsize=LABEL_SIZE)
    ece_ax.set_xticks(x, labels, rotation=45 if len(labels) > 8 else 0)
    ece_ax.grid(alpha=0.3)
    return _save(fig, path)


# --- helpers -----------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="tight")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    """Write the PNG next to its destination, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        fig.clear()
    return path


def _line_style(name: str, rank: int) -> dict[str, object]:
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    if "oracle" in name.lower() or "truth" in name.lower():
        return {"color": "#000000", "linestyle": ":", "linewidth": 1.6}
    return {
        "color": palette[rank % len(palette)],
        "linestyle": "-",
        "linewidth": 2.4 if rank == 0 else 1.4,
    }


def _binary_labels(y_true: np.ndarray, need_both: bool = True) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {y.shape}")
    bad = ~np.isin(y, [0, 1])
    if bad.any():
        raise ValueError(
            f"labels must be 0/1; {bad.sum():,} of {len(y):,} are not (e.g. {y[bad][0]!r}) — "
            "drop rows whose label is null (not eligible) before plotting"
        )
    y = y.astype("int64")
    if need_both and y.min() == y.max():
        raise ValueError(f"labels are all {y[0]}: ROC and gains need both classes")
    return y


def _checked_scores(scores: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    if not scores:
        raise ValueError("no scores given: pass {'model': p, 'baseline name': scores, ...}")
    checked = {}
    for name, score in scores.items():
        score = np.asarray(score, dtype="float64")
        if score.shape != (n,):
            raise ValueError(f"scores {name!r} have shape {score.shape}, labels have ({n},)")
        missing = ~np.isfinite(score)
        if missing.any():
            raise ValueError(
                f"scores {name!r}: {missing.sum():,} of {n:,} are NaN or infinite — score the "
                "same rows as the labels, or fill the baseline's missing inputs first"
            )
        checked[name] = score
    return checked


def _probabilities(p: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(p, dtype="float64")
    if p.shape != (n,):
        raise ValueError(f"probabilities have shape {p.shape}, labels have ({n},)")
    outside = ~((p >= 0) & (p <= 1))
    if outside.any():
        raise ValueError(
            f"{outside.sum():,} probabilities are outside [0, 1] or NaN (e.g. {p[outside][0]!r}): "
            "calibration needs calibrated probabilities, not raw scores"
        )
    return p


def _gains_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share contacted, share of positives captured) at the end of every group of tied scores."""
    order = np.argsort(-score, kind="stable")
    ranked_scores, ranked_y = score[order], y[order]
    group_ends = np.r_[np.flatnonzero(np.diff(ranked_scores) != 0), len(y) - 1]
    captured = np.cumsum(ranked_y)[group_ends] / max(ranked_y.sum(), 1)
    contacted = (group_ends + 1) / len(y)
    return np.r_[0.0, contacted], np.r_[0.0, captured]


def _calibration_bins(
    y: np.ndarray, p: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: count, mean predicted probability, observed rate (NaN when empty)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    index = calibration_bin(p, bins)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / counts
        observed = np.bincount(index, weights=y, minlength=bins) / counts
    return counts, mean_p, observed


def _numeric_for_colour(features: pd.DataFrame) -> np.ndarray:
    """Features as floats for the beeswarm colour scale: categories and text become codes."""
    return np.column_stack([_as_float(features[name]) for name in features.columns])


def _as_float(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    # category, object or str: codes (categories in their order, text sorted); missing -> NaN
    codes = column.astype("category").cat.codes.to_numpy(dtype="float64")
    codes[codes < 0] = np.nan
    return codes


def _cutoff_label(cutoff: object) -> str:
    if isinstance(cutoff, pd.Period):
        return str(cutoff)
    if hasattr(cutoff, "strftime") or isinstance(cutoff, np.datetime64):
        return pd.Timestamp(cutoff).strftime("%Y-%m")
    return str(cutoff)
