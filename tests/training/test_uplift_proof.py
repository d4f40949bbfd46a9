"""The proof of the lists' value, small (docs/design.md §14; the full one is
benchmarks/campaign.py).

- The gate: ``retain promote`` makes the uplift model champion only when its lists save more
  per call than the risk ranking's on the same held-out randomised months, beyond their noise;
  where the effect follows the risk, it keeps the risk ranking.
- On a synthetic bank with a campaign history, what the learned rankings save is computed
  exactly from the two potential outcomes of the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import BankConfig
from training.uplift_learners import Rows
from training.uplift_metrics import ipw_effect
from training.uplift_run import GATE_GAIN, beats_risk, fit_uplift, log_uplift_run
from training.uplift_truth import saved_by, top_of_lists

MONTHS = [f"2024-{m:02d}-28" for m in range(1, 7)]  # held out: 05, 06; trained on: 01, 02
# customers of the simulated history: its two held-out months (a third) must tell a ranking that
# saves twice as much from the risk ranking beyond their noise
N = 100_000


def randomised(n: int, seed: int, follows_risk: bool) -> tuple[Rows, np.ndarray, np.ndarray]:
    """Rows of a randomised history (80% called in the ranked places, 30% drawn below them)
    with a known effect: a fixed share of each customer's risk where the effect follows the
    risk, else 10 points for customers with f2 > 0.3 whatever their risk and −4 points (sleeping
    dogs) for f3 > 1.3. Returns the rows, the true risk and the true effect."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"f{i}" for i in range(5)])
    risk = 1 / (1 + np.exp(-(-1.5 + 0.9 * x["f1"].to_numpy())))
    f2, f3 = x["f2"].to_numpy(), x["f3"].to_numpy()
    tau = 0.35 * risk if follows_risk else np.minimum(0.1 * (f2 > 0.3), risk) - 0.04 * (f3 > 1.3)
    p_treat = np.where(rng.random(n) < 0.5, 0.8, 0.3)
    treated = (rng.random(n) < p_treat).astype(int)
    y = (rng.random(n) < np.clip(np.where(treated == 1, risk - tau, risk), 0, 1)).astype(int)
    value = rng.lognormal(8, 0.5, n)
    ids = np.arange(n) + seed * 10**7
    months = np.array(MONTHS, dtype=object)[rng.integers(0, len(MONTHS), n)]
    return Rows(x, y, treated, p_treat, value, ids, months), risk, tau


def fitted(follows_risk: bool, seed: int):
    rows, risk, _ = randomised(N, seed, follows_risk)
    by_row = pd.Series(risk, index=pd.MultiIndex.from_arrays([rows.x["f0"], rows.x["f1"]]))

    def risk_of(x: pd.DataFrame) -> np.ndarray:  # the true risk: the best a churn model can do
        return by_row.loc[list(zip(x["f0"], x["f1"], strict=True))].to_numpy()

    return fit_uplift(rows, risk_of, BankConfig(), share=0.3, learners=("shift",))


def test_the_gate_lets_uplift_in_only_where_it_beats_the_risk_ranking(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    from models.registry import CHAMPION, use_store
    from models.uplift import UPLIFT, load_uplift
    from training.promote import promote

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_store(tmp_path)
    mlflow.set_experiment("retain")

    def champion_alias() -> bool:  # what `[lists] ranking = "auto"` looks for
        return CHAMPION in MlflowClient().get_registered_model(UPLIFT).aliases

    # the effect follows the risk: ranking by risk is ranking by effect, the gate keeps risk —
    # even with no uplift champion at all, so "auto" goes on ranking by risk
    ties = fitted(follows_risk=True, seed=2)
    figures = ties.figures["shift"]
    assert not beats_risk(figures)
    assert figures[f"{GATE_GAIN}_low"] <= 0 <= figures[f"{GATE_GAIN}_high"] + 1e-9
    log_uplift_run(ties, "simulated")
    decision = promote(UPLIFT)
    assert not decision["promoted"] and decision["champion"] is None, decision["reason"]
    assert "does not beat the risk ranking" in decision["reason"]
    assert not champion_alias()
    # effects unlike the risk: the uplift lists save more, beyond the noise of two months
    wins = fitted(follows_risk=False, seed=1)
    figures = wins.figures["shift"]
    assert figures[f"{GATE_GAIN}_low"] > 0 and beats_risk(figures)
    assert figures["qini_low"] > 0  # the Qini on the held-out months, its interval above 0
    first = log_uplift_run(wins, "simulated")["version"]
    decision = promote(UPLIFT)
    assert decision["promoted"] and decision["champion"] == first, decision["reason"]
    assert "beats the risk ranking" in decision["reason"] and champion_alias()
    # a later challenger that does not win leaves the champion as it was, unless forced
    second = log_uplift_run(ties, "simulated")["version"]
    decision = promote(UPLIFT)
    assert not decision["promoted"] and decision["champion"] == first
    assert load_uplift(alias=CHAMPION).version == first
    forced = promote(UPLIFT, force=True)
    assert forced["promoted"] and "--force" in forced["reason"]
    assert load_uplift(alias=CHAMPION).version == second


def test_saved_value_is_counted_per_list_from_both_potential_outcomes():
    """Three lists with capacities 2, 1 and 0: each calls its own best, the saved value is
    Σ τ × value over them and the points are τ's mean, ties broken by position."""
    score = np.array([0.9, 0.1, 0.5, 0.5, 0.7, 0.3, 0.8])
    lists = np.array(["a", "a", "a", "b", "b", "b", "c"], dtype=object)
    capacity = np.array([2, 2, 2, 1, 1, 1, 0])
    assert top_of_lists(score, lists, capacity).tolist() == [1, 0, 1, 0, 1, 0, 0]
    tau = np.array([0.10, 0.50, -0.02, 0.3, 0.04, 0.0, 0.9])
    value = np.array([100.0, 1.0, 50.0, 10.0, 1000.0, 5.0, 1e6])
    saved = saved_by(score, tau, value, lists, capacity)
    assert saved["calls"] == 3
    assert saved["saved_per_call"] == pytest.approx((10.0 - 1.0 + 40.0) / 3)
    assert saved["points_per_call"] == pytest.approx(100 * (0.10 - 0.02 + 0.04) / 3)
    # the inverse-propensity estimate of the same rows agrees in expectation (a sanity check
    # of the two ways the project counts an effect): ψ averages τ over many draws
    rng = np.random.default_rng(0)
    n, p0, e = 400_000, 0.2, 0.3
    treated = (rng.random(n) < e).astype(int)
    y = (rng.random(n) < np.where(treated == 1, p0 - 0.05, p0)).astype(int)
    assert ipw_effect(y, treated, np.full(n, e)).mean() == pytest.approx(0.05, abs=0.01)
