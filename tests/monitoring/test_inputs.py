"""What monitoring reads of a side: its score columns and who each score is judged on."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.config import BankConfig
from features.targets import CHURN, UPGRADE, cross_sell
from models.registry import use_store
from monitoring.inputs import MonitorError, Side, population, score_columns, training_run_id
from monitoring.job import compare

CONFIG = BankConfig()
TOP = len(CONFIG.tiers.names) - 1


def _month() -> pd.DataFrame:
    """Four customers of a scored month, with the columns that define each population."""
    return pd.DataFrame(
        {
            "eligible_churn": [True, False, None, True],
            "tier_level": [0.0, float(TOP), np.nan, 1.0],
            "holds_fund": [True, False, None, False],
            "p_churn": [0.1, 0.2, 0.3, 0.4],
            "propensity_fund": [0.5, 0.6, 0.7, 0.8],
            "p_upgrade": [0.1, 0.1, 0.1, 0.1],
            "p_value": [1.0, 2.0, 3.0, 4.0],  # not a score: no model makes it
            "propensity_note": ["a", "b", "c", "d"],  # not a number
        }
    )


def test_the_scores_are_the_numeric_columns_the_naming_scheme_makes():
    assert score_columns(_month()) == ["p_churn", "propensity_fund", "p_upgrade"]


def test_each_score_is_judged_on_its_own_population_of_a_scored_month():
    month = _month()
    assert population(month, CHURN, CONFIG).tolist() == [True, False, False, True]
    assert population(month, UPGRADE, CONFIG).tolist() == [True, False, False, True]
    # an unknown holding counts as held: the customer is not offered the product
    assert population(month, cross_sell("fund"), CONFIG).tolist() == [False, True, False, True]
    assert population(month, None, CONFIG).all()


def test_rows_without_the_columns_that_define_a_population_are_kept_whole():
    """A run's logged test rows carry neither eligible_churn nor holds_ columns: they already
    are one model's population, so none of them is cut."""
    rows = _month()[["tier_level", "p_churn", "propensity_fund"]]
    assert population(rows, CHURN, CONFIG).all()
    assert population(rows, cross_sell("fund"), CONFIG).all()
    assert population(rows, cross_sell("gold"), CONFIG).all()
    assert population(rows, UPGRADE, CONFIG).tolist() == [True, False, False, True]


def test_a_run_references_scores_are_judged_on_their_own_rows_against_their_population():
    """With a run reference, each score has its own model's test rows; the month's side of a
    score is every customer in that model's population, not the features' (churn's) cut."""
    rng = np.random.default_rng(0)
    n = 200
    month = pd.DataFrame(
        {
            "cutoff": "2024-12-31",
            "age": rng.integers(20, 80, n),
            "eligible_churn": np.arange(n) % 2 == 0,  # half are churn's customers
            "holds_fund": np.arange(n) % 4 == 0,  # a quarter hold the fund
            "tier_level": rng.integers(0, TOP + 1, n),
            "contribution_12m": rng.random(n) * 1_000,
            "p_churn": rng.random(n),
            "propensity_fund": rng.random(n),
        }
    )
    churn_rows = month[month["eligible_churn"]].drop(columns=["eligible_churn", "holds_fund"])
    fund_rows = pd.DataFrame({"propensity_fund": rng.random(120), "tier_level": 1})
    reference = Side(
        "run", None, churn_rows, population=CHURN, score_rows={"propensity_fund": fund_rows}
    )
    result = compare(reference, Side("month", None, month), CONFIG)
    drift = result["drift"].set_index(["what", "segment"])
    assert drift.loc[("age", "all"), "n_current"] == 100  # features: churn's customers
    fund = drift.loc[("propensity_fund", "all")]
    assert fund["n_reference"] == 120 and fund["n_current"] == 150  # not holding the fund
    churn = drift.loc[("p_churn", "all")]  # no rows of its own: the features' rows, cut alike
    assert churn["n_reference"] == churn["n_current"] == 100


def test_a_short_run_id_is_resolved_in_the_training_experiment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_store(tmp_path)
    with mlflow.start_run() as run:
        pass
    whole = run.info.run_id
    assert training_run_id(whole) == whole
    assert training_run_id(whole[:8]) == whole  # what `retain runs` shows
    assert training_run_id("2024-12-31") is None  # a date is no run id
    with pytest.raises(MonitorError, match="no run of the experiment 'retain' start with"):
        training_run_id("0" * 8 if not whole.startswith("0" * 8) else "f" * 8)
