"""The randomised assignment's probabilities are the ones it records (docs/design.md §14): over many
draws, the share of customers held back in the ranked places and the share drawn from below
the cut match their ``p_treat``, within 2 points, on at least 20,000 draws each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import ListPolicy
from serving.assign import CALLED, CONTROL, EXPLORE, assign_list

POLICY = ListPolicy(control_share=0.10, explore_share=0.10)


def test_p_treat_is_the_frequency_of_being_called():
    rng = np.random.default_rng(0)
    ranked_draws, ranked_called, ranked_p = 0, 0, []
    below_draws, below_called, below_p = 0, 0, []
    control_share = []
    for month in range(160):  # a list of 400 listable customers, 150 places, month after month
        pool = pd.DataFrame({"customer_id": np.arange(400), "score": rng.random(400)})
        done = assign_list(pool, capacity=160, leaving=10, policy=POLICY, cutoff=f"m{month}")
        ranked = done["assigned_rank"] <= 135  # 150 places, 15 (10%) for exploration
        called = done["list_group"].isin(CALLED)
        ranked_draws += ranked.sum()
        ranked_called += called[ranked].sum()
        ranked_p += done.loc[ranked, "p_treat"].tolist()
        control_share.append((done.loc[ranked, "list_group"] == CONTROL).mean())
        below_draws += (~ranked).sum()
        below_called += called[~ranked].sum()
        below_p += done.loc[~ranked, "p_treat"].tolist()
        # every exploration slot and every place the control freed is filled from below
        assert (done["list_group"] == EXPLORE).sum() == 15 + (done["list_group"] == CONTROL).sum()
        assert called.sum() == 150
    assert ranked_draws >= 20_000 and below_draws >= 20_000
    assert abs(ranked_called / ranked_draws - np.mean(ranked_p)) <= 0.02
    assert abs(np.mean(control_share) - 0.10) <= 0.02
    assert abs(below_called / below_draws - np.mean(below_p)) <= 0.02
    assert 0 < np.mean(below_p) < 1  # below the cut, a known chance of a call
