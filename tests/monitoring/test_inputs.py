"""What monitoring reads of a side: its score columns and who each score is judged on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import BankConfig
from features.targets import CHURN, UPGRADE, cross_sell
from monitoring.inputs import population, score_columns

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
