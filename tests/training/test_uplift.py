"""The uplift model (docs/design.md §14): the measures on a hand-made case, the learners on
simulated randomised rows with a known effect, the power calculation, and the artifact's round trip
through the registry (native boosters, hashes checked, no pickle)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.uplift_data import UpliftHistoryError, check_history, power_needed, split_uplift
from training.uplift_learners import LEARNERS, Rows
from training.uplift_metrics import (
    auuc,
    average_effect,
    gain_curve,
    ipw_effect,
    policy_value,
    qini,
    uplift_at,
)


def test_the_measures_on_a_hand_made_case():
    # e = 0.5: ψ = 2 for a churner not called, −2 for a churner called, 0 for the rest
    y, t, e = np.array([1, 1, 0, 0]), np.array([0, 1, 0, 1]), np.full(4, 0.5)
    assert ipw_effect(y, t, e).tolist() == [2.0, -2.0, 0.0, 0.0]
    score = np.array([0.9, 0.1, 0.5, 0.4])  # ranks rows 0, 2, 3, 1
    assert gain_curve(score, y, t, e).tolist() == [2.0, 2.0, 2.0, 0.0]
    assert qini(score, y, t, e) == pytest.approx(6 / 4 / 4)  # random line is 0: G(N) = 0
    assert auuc(score, y, t, e) == pytest.approx(6 / 4 / 4)
    assert qini(-score, y, t, e) == pytest.approx(-6 / 4 / 4)  # the worst order: G = −2 …
    assert uplift_at(score, y, t, e, 0.25) == 2.0
    value = np.array([10.0, 20.0, 30.0, 40.0])
    assert policy_value(score, y, t, e, value, 0.25) == 20.0
    assert policy_value(score, y, t, e, value, 0.5) == 10.0  # (20 + 0) / 2


def simulated(n: int, seed: int, effect: float = 0.10) -> tuple[Rows, np.ndarray]:
    """Randomised rows whose effect of a call is known: ``effect`` for customers with f2 > 0.3
    (among the not-tiny risks), −0.04 for f3 > 1.3 (sleeping dogs), 0 for the rest."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"f{i}" for i in range(5)])
    p0 = 1 / (1 + np.exp(-(-2.2 + 0.9 * x["f1"])))
    tau = (effect * (x["f2"] > 0.3) * (p0 > 0.05) - 0.04 * (x["f3"] > 1.3)).to_numpy()
    p_treat = np.where(rng.random(n) < 0.5, 0.9, 0.2)  # ranked places / explored below
    treated = (rng.random(n) < p_treat).astype(int)
    y = (rng.random(n) < np.where(treated == 1, np.clip(p0 - tau, 0, 1), p0)).astype(int)
    value = rng.lognormal(8, 1, n)
    ids = np.arange(n) + seed * 10**7
    months = np.array([f"2024-{m:02d}-28" for m in rng.integers(1, 11, n)], dtype=object)
    return Rows(x, y, treated, p_treat, value, ids, months), tau


@pytest.fixture(scope="module")
def fitted():
    train, _ = simulated(30_000, 1)
    test, tau = simulated(20_000, 2)
    return {name: fit(train).effect(test.x) for name, fit in LEARNERS.items()}, test, tau


@pytest.mark.parametrize("learner", sorted(LEARNERS))
def test_each_learner_finds_whom_a_call_saves(fitted, learner):
    effects, test, tau = fitted
    estimate = effects[learner]
    assert np.corrcoef(estimate, tau)[0, 1] > 0.4, learner
    # ranked by the estimate, the Qini is well above a random ranking's 0 ...
    assert qini(estimate, test.y, test.treated, test.p_treat) > 0.002
    # ... and the customers a call pushes away (τ < 0) are ranked low
    assert estimate[tau < 0].mean() < estimate[tau > 0].mean()


def test_the_power_calculation_and_too_little_history():
    # REFERENCES.md: 10% control, listed churn 15%: a 2-point effect needs ~2,750 control
    # customers, 3 points ~1,200
    assert 2_400 <= power_needed(0.15, 0.02, 0.10) <= 3_100
    assert 1_000 <= power_needed(0.15, 0.03, 0.10) <= 1_400
    small, _ = simulated(3_000, 3)
    with pytest.raises(UpliftHistoryError, match=r"needs [\d,]+, about \d+ months"):
        check_history(small)
    enough, _ = simulated(60_000, 4)
    figures = check_history(enough)
    assert figures["control_rows"] >= figures["control_needed"]


def test_the_history_reports_the_effect_it_shows_and_what_that_effect_needs():
    # the simulated truth: effect 0.10 for f2 > 0.3 among the not-tiny risks, −0.04 for the
    # sleeping dogs; averaged over the would-be lists (p_treat 0.9) about 2.4 points
    covered, observed, truths = 0, [], []
    for seed in range(4, 14):  # ten histories of ~3,000 control customers each
        rows, tau = simulated(60_000, seed)
        places = rows.p_treat > 0.5
        p0 = 1 / (1 + np.exp(-(-2.2 + 0.9 * rows.x["f1"].to_numpy())))
        true = float(np.mean(p0[places] - np.clip(p0[places] - tau[places], 0, 1)))
        figures = check_history(rows)
        covered += figures["observed_effect_low"] <= true <= figures["observed_effect_high"]
        observed.append(figures["observed_effect"])
        truths.append(true)
        share = figures["control_rows"] / places.sum()
        expected = power_needed(figures["control_churn"], figures["observed_effect"], share)
        assert figures["control_needed_observed"] == expected
    # a 95% interval: 8 or more of 10 cover the truth (fewer has a chance of about 1%)
    assert covered >= 8, covered
    # unbiased: the mean of ten estimates (standard error ~0.002) within 0.005 of the truth
    assert abs(np.mean(observed) - np.mean(truths)) < 0.005, (np.mean(observed), np.mean(truths))
    # calls that push customers away (about −3.5 points; ~1,000 control customers, standard
    # error ~1.1 points): the refusal says the history shows no saving yet
    harmful, _ = simulated(20_000, 3, effect=-0.10)
    with pytest.raises(UpliftHistoryError, match=r"the history so far shows -.*: no saving yet"):
        check_history(harmful)


def test_the_average_effect_weighs_each_arm_by_its_known_probability():
    # no effect at all, but a policy that calls the riskier more often (p_treat 0.3 → 0.9)
    rng = np.random.default_rng(5)
    risk = rng.uniform(0.02, 0.3, 40_000)
    p_treat = 0.3 + 0.6 * (risk - 0.02) / 0.28
    t = (rng.random(len(risk)) < p_treat).astype(int)
    y = (rng.random(len(risk)) < risk).astype(int)
    plain = y[t == 0].mean() - y[t == 1].mean()
    effect, low, high = average_effect(y, t, p_treat)
    assert plain < -0.04  # the plain difference says calls push customers away
    assert low <= 0 <= high and high - low < 0.02, (effect, low, high)
    # one probability for every row: the plain difference
    same = np.full(len(risk), 0.9)
    assert average_effect(y, t, same)[0] == pytest.approx(y[t == 0].mean() - y[t == 1].mean())


def test_the_split_holds_out_the_latest_months_behind_the_embargo():
    rows, _ = simulated(5_000, 5)
    split = split_uplift(rows, horizon=3, held_out_months=2)
    assert split.held_out_cutoffs == ("2024-09-28", "2024-10-28")
    assert max(split.train_cutoffs) == "2024-06-28"  # three months before the first held out
    assert len(split.train) + len(split.held_out) < len(rows)  # the embargoed months dropped
    with pytest.raises(UpliftHistoryError, match="leaves nothing to train on"):
        split_uplift(rows.take(np.isin(rows.cutoff, ["2024-09-28", "2024-10-28"])), 3)


def test_the_uplift_artifact_round_trips_through_the_registry(tmp_path, monkeypatch):
    import mlflow

    from models.registry import CHALLENGER, RegistryError, use_store
    from models.uplift import load_uplift, log_uplift
    from training.uplift_learners import fit_t

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_store(tmp_path)
    rows, _ = simulated(8_000, 6)
    artifact = fit_t(rows)
    with mlflow.start_run():
        logged = log_uplift(artifact, rows.x)
    loaded = load_uplift(alias=CHALLENGER)
    assert np.allclose(loaded.effect(rows.x), artifact.effect(rows.x))
    pyfunc = mlflow.pyfunc.load_model(logged.model_uri)
    assert np.allclose(pyfunc.predict(rows.x), artifact.effect(rows.x))
    # a booster changed in the store is refused, never loaded
    stored = next((tmp_path / "artifacts").rglob("control.lgb"))
    stored.write_text(stored.read_text().replace("tree_sizes", "tree_sizes ", 1))
    with pytest.raises(RegistryError, match="does not match"):
        load_uplift(alias=CHALLENGER)
