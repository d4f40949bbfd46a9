"""Meta-learners of the effect of a call on LightGBM, with the known probability of the call
(``p_treat``, from the assignment) as the propensity — never estimated (docs/design.md §14).

τ(x) = P(churn | x, not called) − P(churn | x, called):

- **T**: one outcome model per arm, τ = μ₀(x) − μ₁(x);
- **X** (Künzel et al. 2019): the outcome models impute each customer's effect — called:
  μ₀(x) − Y, not called: Y − μ₁(x) — and an effect model per arm learns them; τ = g·τ₀ +
  (1 − g)·τ₁ with g the share of calls;
- **DR** (Kennedy 2023): doubly robust pseudo-outcomes μ₀ − μ₁ + (1 − T)(Y − μ₀)/(1 − e) −
  T(Y − μ₁)/e, with outcome models fitted on the other half of the customers (cross-fitting),
  and one effect model on them;
- **shift**: the outcome model of the customers not called, μ₀, and what a call does to the
  log-odds, learned on the called customers as a correction of μ₀ (LightGBM from the
  initial score logit μ₀(x)): P(churn | x, called) = σ(logit μ₀(x) + s(x)), τ = μ₀ −
  σ(logit μ₀ + s). The called arm is mostly the top of the earlier lists and small; a second
  outcome model learned from it alone (T) re-learns the risk and its errors become the effect,
  while the shift starts from "a call changes nothing" and learns only what the calls changed.
  With little history it stays near one average shift — close to ranking by risk;
- **R** (Nie & Wager 2021): m(x), the outcome of both arms together (cross-fitted), and one
  effect model fitted to −(Y − m)/(T − e) with weights (T − e)²: with e known it is unbiased
  whatever m's errors, and it weighs each region's rarer arm most.

Effects are weak and noisy beside risk, so the trees are shallow with large leaves, and each
model stops early on a fixed fifth of its rows (by customer, so a customer is never on both
sides). Outcome models stop on log loss, not AUC: an effect is a difference of two
probabilities, so each must be calibrated, not only ranked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.boosters import lgb
from models.uplift import UpliftArtifact
from models.uplift_pyfunc import PROBABILITY_RANGE, logit

PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 7,
    "max_depth": 3,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "verbosity": -1,
    "deterministic": True,
    "force_col_wise": True,
    "num_threads": 0,  # OpenMP's default: every core, or OMP_NUM_THREADS
    "seed": 0,
}
ROUNDS, PATIENCE = 400, 50


@dataclass(frozen=True)
class Rows:
    """Randomised rows: inputs, churned, called, the known probability of a call, value."""

    x: pd.DataFrame
    y: np.ndarray
    treated: np.ndarray
    p_treat: np.ndarray
    value: np.ndarray
    customer_id: np.ndarray
    cutoff: np.ndarray

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(
            self.x[mask].reset_index(drop=True),
            *(a[mask] for a in (self.y, self.treated, self.p_treat, self.value)),
            self.customer_id[mask],
            self.cutoff[mask],
        )

    def __len__(self) -> int:
        return len(self.y)


def customer_fold(customer_id: np.ndarray, folds: int) -> np.ndarray:
    """A customer's fold, the same in every month: a hash of the id."""
    return np.array(
        [
            int.from_bytes(hashlib.sha256(str(c).encode()).digest()[:4], "big") % folds
            for c in customer_id
        ]
    )


def fit(
    x: pd.DataFrame,
    target: np.ndarray,
    objective: str,
    customer_id: np.ndarray,
    init_score: np.ndarray | None = None,
    weight: np.ndarray | None = None,
):
    """A booster on ``target`` (``binary`` or ``regression``; from ``init_score``, raw, and
    with row ``weight`` when given), stopping early on a fifth of the customers."""
    held = customer_fold(customer_id, 5) == 0
    metric = "binary_logloss" if objective == "binary" else "l2"
    params = {**PARAMS, "objective": objective, "metric": metric}

    def part(values, rows):
        return None if values is None else values[rows]

    train = lgb.Dataset(
        x[~held],
        label=target[~held],
        init_score=part(init_score, ~held),
        weight=part(weight, ~held),
        free_raw_data=False,
    )
    valid = lgb.Dataset(
        x[held],
        label=target[held],
        init_score=part(init_score, held),
        weight=part(weight, held),
        reference=train,
        free_raw_data=False,
    )
    return lgb.train(
        params,
        train,
        num_boost_round=ROUNDS,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(PATIENCE, verbose=False)],
    )


def _arm(rows: Rows, called: bool) -> np.ndarray:
    return rows.treated.astype(bool) == called


def fit_t(rows: Rows) -> UpliftArtifact:
    boosters = {}
    for name, called in (("control", False), ("treated", True)):
        arm = _arm(rows, called)
        boosters[name] = fit(rows.x[arm], rows.y[arm], "binary", rows.customer_id[arm])
    return UpliftArtifact("t", boosters, list(rows.x.columns), float(rows.p_treat.mean()))


def fit_x(rows: Rows) -> UpliftArtifact:
    outcome = fit_t(rows).boosters
    mu0, mu1 = (outcome[n].predict(rows.x) for n in ("control", "treated"))
    called = rows.treated.astype(bool)
    imputed = np.where(called, mu0 - rows.y, rows.y - mu1)
    boosters = {
        name: fit(rows.x[arm], imputed[arm], "regression", rows.customer_id[arm])
        for name, arm in (("tau_control", ~called), ("tau_treated", called))
    }
    return UpliftArtifact("x", boosters, list(rows.x.columns), float(rows.p_treat.mean()))


def dr_pseudo_outcomes(rows: Rows, folds: int = 2) -> np.ndarray:
    """Each row's doubly robust pseudo-outcome, its outcome models fitted on the other fold."""
    fold = customer_fold(rows.customer_id, folds)
    psi = np.empty(len(rows))
    t, y, e = rows.treated.astype(float), rows.y.astype(float), rows.p_treat
    for k in range(folds):
        own = fold == k
        models = fit_t(rows.take(~own)).boosters
        x = rows.x[own]
        mu0, mu1 = models["control"].predict(x), models["treated"].predict(x)
        psi[own] = (
            mu0
            - mu1
            + (1 - t[own]) * (y[own] - mu0) / (1 - e[own])
            - t[own] * (y[own] - mu1) / e[own]
        )
    return psi


def fit_dr(rows: Rows) -> UpliftArtifact:
    psi = dr_pseudo_outcomes(rows)
    tau = fit(rows.x, psi, "regression", rows.customer_id)
    return UpliftArtifact("dr", {"tau": tau}, list(rows.x.columns), float(rows.p_treat.mean()))


def fit_shift(rows: Rows) -> UpliftArtifact:
    called = rows.treated.astype(bool)
    control = fit(rows.x[~called], rows.y[~called], "binary", rows.customer_id[~called])
    # μ₀ on the called rows is out of sample: the control model never saw them
    start = logit(np.clip(control.predict(rows.x[called]), *PROBABILITY_RANGE))
    shift = fit(rows.x[called], rows.y[called], "binary", rows.customer_id[called], start)
    boosters = {"control": control, "shift": shift}
    return UpliftArtifact("shift", boosters, list(rows.x.columns), float(rows.p_treat.mean()))


def fit_r(rows: Rows, folds: int = 2) -> UpliftArtifact:
    # Y − m(x) = (T − e)·(μ₁ − μ₀) + noise, m the outcome of both arms together: the effect is
    # the weighted regression of −(Y − m)/(T − e) with weights (T − e)². With e known, errors
    # of m add noise but no bias, and the weights fall on each region's rarer arm (the
    # control within the cut, the explored below it), where the effect is seen.
    fold = customer_fold(rows.customer_id, folds)
    m = np.empty(len(rows))
    for k in range(folds):
        own = fold == k
        outcome = fit(rows.x[~own], rows.y[~own], "binary", rows.customer_id[~own])
        m[own] = outcome.predict(rows.x[own])
    residual = rows.treated - rows.p_treat
    target = -(rows.y - m) / residual
    tau = fit(rows.x, target, "regression", rows.customer_id, weight=residual**2)
    return UpliftArtifact("r", {"tau": tau}, list(rows.x.columns), float(rows.p_treat.mean()))


LEARNERS = {"t": fit_t, "x": fit_x, "dr": fit_dr, "shift": fit_shift, "r": fit_r}
