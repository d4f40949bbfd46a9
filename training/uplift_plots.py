"""The uplift model's curves: the Qini curve and the contribution saved by the number called."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training.uplift_learners import Rows
from training.uplift_metrics import gain_curve


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_qini(rows: Rows, effects: dict[str, np.ndarray], path: Path) -> Path:
    """Churners saved (inverse-propensity weighted) by calling the top share of each ranking,
    against a random ranking."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    share = np.arange(1, len(rows) + 1) / len(rows)
    for name, tau in effects.items():
        ax.plot(share, gain_curve(tau, rows.y, rows.treated, rows.p_treat), label=name)
    end = gain_curve(np.zeros(len(rows)), rows.y, rows.treated, rows.p_treat)[-1]
    ax.plot([0, 1], [0, end], linestyle="--", color="grey", label="random")
    ax.set(xlabel="share of customers called", ylabel="churners saved", title="Qini curve")
    ax.legend()
    return _save(fig, path)


def plot_saved_value(
    rows: Rows, effects: dict[str, np.ndarray], risk: np.ndarray, path: Path
) -> Path:
    """Contribution saved by calling the top share, ranked by saved value (each learner) and
    by expected loss (the risk ranking)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    share = np.arange(1, len(rows) + 1) / len(rows)
    for name, tau in effects.items():
        curve = gain_curve(tau * rows.value, rows.y, rows.treated, rows.p_treat, rows.value)
        ax.plot(share, curve, label=f"{name}: τ̂ × value")
    risk_curve = gain_curve(risk, rows.y, rows.treated, rows.p_treat, rows.value)
    ax.plot(share, risk_curve, color="black", label="risk: p × value")
    ax.set(xlabel="share of customers called", ylabel="contribution saved (CNY)")
    ax.set_title("Contribution saved by the number called")
    ax.legend()
    return _save(fig, path)
