"""How well a ranking finds the customers a call saves, measured on randomised rows
(docs/design.md §14).

On a row whose call was randomised with known probability ``e`` (``p_treat``), the inverse-
propensity term

    ψ = (1 − T)·Y / (1 − e) − T·Y / e

(``T`` called or not, ``Y`` churned) is an unbiased estimate of that customer's effect
τ = P(churn | not called) − P(churn | called). Every measure below sums ψ over the top of a
ranking:

- **gain** ``G(k) = Σ_{i ≤ k} ψ_i`` — churners saved by calling the ``k`` highest-ranked;
- **Qini coefficient** — the mean height of ``G`` above the straight line of a random
  ranking, ``(1/N) Σ_k (G(k) − k/N · G(N))``, per customer (divided by N again): 0 for a
  random ranking, positive when the ranking finds the persuadable first;
- **AUUC** — the mean height of ``G`` per customer, ``(1/N²) Σ_k G(k)``;
- **uplift@k** — the mean ψ in the top share ``k`` (churn points saved per call);
- **policy value@k** — the mean ψ × value in the top share ``k``: contribution saved per call.

With outcome models μ₀, μ₁ fitted on other months (``terms=`` :func:`dr_effect`), ψ becomes
the doubly robust term μ₀ − μ₁ + (1 − T)(Y − μ₀)/(1 − e) − T(Y − μ₁)/e: still unbiased with the
known ``e`` whatever the models, and far less noisy — a called churner drawn with e = 0.05
weighs −20 in ψ, times a contribution with a heavy tail, and a few of them decide an IPW
policy value.

Intervals are percentile bootstraps over rows (customers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BOOTSTRAP_DRAWS = 200


def ipw_effect(y: np.ndarray, treated: np.ndarray, p_treat: np.ndarray) -> np.ndarray:
    """ψ per row (see the module's docstring)."""
    y, t, e = (np.asarray(a, dtype="float64") for a in (y, treated, p_treat))
    return (1 - t) * y / (1 - e) - t * y / e


def average_effect(y, treated, p_treat, z: float = 1.959964) -> tuple[float, float, float]:
    """The average effect of a call over the rows — churn not called − churn called, each
    arm's mean weighted by the inverse of its known probability (Hájek) — and its 95% normal
    interval (delta method). With one ``p_treat`` for every row it is the plain difference of
    the arms; where the probability varies (a bank's own policy may call the riskier more
    often), the plain difference would compare unlike customers."""
    y, t, e = (np.asarray(a, dtype="float64") for a in (y, treated, p_treat))
    w1, w0 = t / e, (1 - t) / (1 - e)
    if len(y) < 2 or w1.sum() == 0 or w0.sum() == 0:
        return float("nan"), float("nan"), float("nan")
    m1, m0 = (w1 * y).sum() / w1.sum(), (w0 * y).sum() / w0.sum()
    influence = w0 * (y - m0) / w0.mean() - w1 * (y - m1) / w1.mean()
    half = z * influence.std(ddof=1) / np.sqrt(len(y))
    return float(m0 - m1), float(m0 - m1 - half), float(m0 - m1 + half)


def dr_effect(y, treated, p_treat, mu0, mu1) -> np.ndarray:
    """The doubly robust ψ per row, with outcome models μ₀ (not called) and μ₁ (called)
    fitted elsewhere."""
    y, t, e, m0, m1 = (np.asarray(a, dtype="float64") for a in (y, treated, p_treat, mu0, mu1))
    return m0 - m1 + (1 - t) * (y - m0) / (1 - e) - t * (y - m1) / e


def _terms(y, treated, p_treat, terms) -> np.ndarray:
    return ipw_effect(y, treated, p_treat) if terms is None else np.asarray(terms, dtype="float64")


def _ordered(score: np.ndarray, terms: np.ndarray) -> np.ndarray:
    order = np.argsort(-np.asarray(score, dtype="float64"), kind="stable")
    return np.asarray(terms, dtype="float64")[order]


def gain_curve(score, y, treated, p_treat, value=None, terms=None) -> np.ndarray:
    """``G(k)`` for k = 1..N (value-weighted when ``value`` is given; ψ = ``terms`` when
    given, else the IPW ψ)."""
    terms = _terms(y, treated, p_treat, terms)
    if value is not None:
        terms = terms * np.asarray(value, dtype="float64")
    return np.cumsum(_ordered(score, terms))


def qini(score, y, treated, p_treat, terms=None) -> float:
    curve = gain_curve(score, y, treated, p_treat, terms=terms)
    n = len(curve)
    if n == 0:
        return float("nan")
    random = np.arange(1, n + 1) / n * curve[-1]
    return float((curve - random).mean() / n)


def auuc(score, y, treated, p_treat, terms=None) -> float:
    curve = gain_curve(score, y, treated, p_treat, terms=terms)
    return float(curve.mean() / len(curve)) if len(curve) else float("nan")


def top_mean(score, terms, share: float) -> float:
    ordered = _ordered(score, terms)
    k = max(int(round(share * len(ordered))), 1)
    return float(ordered[:k].mean()) if len(ordered) else float("nan")


def uplift_at(score, y, treated, p_treat, share: float, terms=None) -> float:
    return top_mean(score, _terms(y, treated, p_treat, terms), share)


def policy_value(score, y, treated, p_treat, value, share: float, terms=None) -> float:
    """Contribution saved per call by calling the top ``share`` of the ranking."""
    saved = _terms(y, treated, p_treat, terms) * np.asarray(value, dtype="float64")
    return top_mean(score, saved, share)


def bootstrap(
    measure: Callable[[np.ndarray], float],
    n: int,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """95% percentile interval of ``measure(rows)`` over ``draws`` resamples of ``n`` rows."""
    rng = np.random.default_rng(seed)
    values = [measure(rng.integers(0, n, n)) for _ in range(draws)]
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)
