"""The control group: did the lists keep customers, and what did they save? (docs/design.md
§12–14)

At scoring, each customer of a list's ranked places is held back at random (``list_group`` =
"control", the rest "treated", ``p_treat`` the known chance of a call); below the cut,
customers are drawn for exploration. Once a cutoff's labels mature, the churn rate of treated
and control *within capacity* is compared among customers with a label (the already leaving,
called by rule with ``p_treat`` = 1, have no label and no draw). Because the groups were split
at random, the difference is the lists' effect:

- ``difference`` = churn(control) − churn(treated), positive when the lists helped, with a 95%
  interval by Newcombe's hybrid score method (method 10 of Newcombe, 1998: Wilson intervals of
  each rate combined), which keeps its coverage with few churners where the Wald interval
  does not;
- ``customers_saved`` = difference × treated customers, with the interval scaled the same way;
- ``contribution_saved`` = difference × the treated customers' contribution;
- with an uplift model (the month's ``uplift`` column): its Qini on the month's randomised rows
  (``training.uplift_metrics``, inverse-propensity weighted, 95% bootstrap interval), to
  compare with the figure it was trained to (the ``qini`` of its training run).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.targets import CHURN

Z95 = 1.959964
TREATED, CONTROL = "treated", "control"
CALLED = ("treated", "explore")


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(
    x1: int, n1: int, x2: int, n2: int, z: float = Z95
) -> tuple[float, float, float]:
    """``p1 − p2`` and its Newcombe hybrid score interval (method 10)."""
    if n1 == 0 or n2 == 0:
        return float("nan"), float("nan"), float("nan")
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return difference, low, high


def control_effect(scored: pd.DataFrame, label: str = CHURN.label) -> dict | None:
    """Listed-and-treated against control for one cutoff; None without a control group.

    Without labels (not matured) only the group sizes are reported."""
    if "list_group" not in scored or not (scored["list_group"] == CONTROL).any():
        return None
    groups = scored["list_group"].astype("string")
    if "p_treat" in scored:  # within capacity: the ranked places' draw, not the called by rule
        groups = groups.where(scored["p_treat"].fillna(1).to_numpy() < 1)
    out = {
        "treated": int((groups == TREATED).sum()),
        "control": int((groups == CONTROL).sum()),
    }
    if label not in scored or scored[label].notna().sum() == 0:
        return {**out, "matured": False}
    known = scored[label].notna().to_numpy()
    y = scored[label].to_numpy(dtype="float64")
    counts = {}
    for group in (TREATED, CONTROL):
        in_group = known & (groups == group).fillna(False).to_numpy(dtype=bool)
        counts[group] = (int(y[in_group].sum()), int(in_group.sum()))
    (x_t, n_t), (x_c, n_c) = counts[TREATED], counts[CONTROL]
    difference, low, high = newcombe_difference(x_c, n_c, x_t, n_t)
    treated = known & (groups == TREATED).fillna(False).to_numpy(dtype=bool)
    value = scored["contribution_12m"].clip(lower=0).to_numpy(dtype="float64")[treated].sum()
    return {
        **out,
        "matured": True,
        "method": "Newcombe hybrid score (method 10), 95%",
        "treated_labelled": n_t,
        "treated_churned": x_t,
        "treated_churn_rate": x_t / n_t if n_t else None,
        "control_labelled": n_c,
        "control_churned": x_c,
        "control_churn_rate": x_c / n_c if n_c else None,
        "difference": _finite(difference),
        "difference_low": _finite(low),
        "difference_high": _finite(high),
        "customers_saved": _finite(difference * n_t),
        "customers_saved_low": _finite(low * n_t),
        "customers_saved_high": _finite(high * n_t),
        "contribution_saved": _finite(difference * value),
        "contribution_saved_low": _finite(low * value),
        "contribution_saved_high": _finite(high * value),
        **(uplift_qini(scored, label) or {}),
    }


def uplift_qini(scored: pd.DataFrame, label: str = CHURN.label) -> dict | None:
    """The uplift model's Qini on the month's randomised, labelled rows (None without one)."""
    from training.uplift_metrics import bootstrap, qini

    needed = ("uplift", "p_treat", "list_group", label)
    if any(c not in scored for c in needed):
        return None
    p = scored["p_treat"].to_numpy(dtype="float64")
    rows = scored[(p > 0) & (p < 1) & scored[label].notna().to_numpy()]
    if len(rows) < 100:
        return None
    tau = rows["uplift"].to_numpy(dtype="float64")
    y, e = rows[label].to_numpy(dtype=int), rows["p_treat"].to_numpy(dtype="float64")
    t = rows["list_group"].isin(CALLED).to_numpy(dtype=int)
    low, high = bootstrap(lambda i: qini(tau[i], y[i], t[i], e[i]), len(rows))
    return {
        "uplift_qini": qini(tau, y, t, e),
        "uplift_qini_low": low,
        "uplift_qini_high": high,
        "uplift_rows": len(rows),
    }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
