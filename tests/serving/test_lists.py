"""The rules of the RM lists (docs/design.md §5, §12) on hand-made frames of a few customers each.

Each customer is one row of the scores frame that ``retain score`` and the API build lists
from; only the columns a rule reads differ from the defaults, so every expected rank is visible
in the test that states it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import ListPolicy
from serving.assign import CONTROL, EXPLORE, NONE, TREATED
from serving.lists import (
    DEFAULT_CAPACITY,
    assignments,
    build_growth_lists,
    build_lists,
    capacities,
    growth_listed,
    leaving_adjusted,
)

# no control group nor exploration unless a test asks for one: ranks are then plain to read
POLICY = ListPolicy(min_risk=0.05, control_share=0.0, explore_share=0.0, growth_capacity=3)
# R1 takes 2, R2 3, R3 10: the median RM takes 3
RMS = pd.DataFrame({"rm_id": ["R1", "R2", "R3"], "capacity": [2, 3, 10]})
CUTOFF = "2024-12-31"


def customer(customer_id: int, **columns) -> dict:
    """One scored customer of RM R3 (room for 10), eligible, contactable, not leaving, at
    medium risk, worth 1,000 a year and with nothing to grow; ``columns`` override."""
    row = {
        "customer_id": customer_id,
        "customer_name": "A**",
        "rm_id": "R3",
        "outlet_id": "O1",
        "tier": "gold",
        "pyramid_level": 0,
        "risk_band": "medium",
        "eligible_churn": True,
        "leaving_now": False,
        "do_not_contact": False,
        "p_churn": 0.10,
        "contribution_12m": 1000.0,
        "next_best_offer": None,
        "offer_amount": np.nan,
        "offer_date": None,
        "offer_propensity": np.nan,
        "action": "retention_call",
        "growth_offer": None,
        "growth_offer_propensity": np.nan,
        "value_added": 0.0,
        "growth_action": "offer_product",
    }
    for rank in (1, 2, 3):
        row[f"reason_{rank}"] = f"churn reason {rank}"
        row[f"growth_reason_{rank}"] = f"growth reason {rank}"
    return {**row, **columns}


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def calm(customer_id: int, value_added: float, **columns) -> dict:
    """A customer not at risk with a growth offer worth ``value_added``."""
    growth = {
        "p_churn": 0.01,
        "growth_offer": "fund",
        "growth_offer_propensity": 0.4,
        "value_added": value_added,
    }
    return customer(customer_id, **{**growth, **columns})


def listed(lists: pd.DataFrame) -> dict[str, list]:
    """Customer ids of each list, in rank order."""
    out = {}
    for list_id, rows in lists.groupby("list_id"):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1)), list_id
        out[list_id] = rows["customer_id"].tolist()
    return out


# --- capacity ---------------------------------------------------------------------------


def test_a_list_is_cut_at_its_rms_capacity_and_never_padded():
    scored = frame(
        # R1 takes 2 of its 4 at-risk customers, by expected loss
        customer(1, rm_id="R1", p_churn=0.10),
        customer(2, rm_id="R1", p_churn=0.40),
        customer(3, rm_id="R1", p_churn=0.20),
        customer(4, rm_id="R1", p_churn=0.30),
        # R2 has room for 3 but only 1 qualifies: the list holds 1
        customer(5, rm_id="R2", p_churn=0.50),
        customer(6, rm_id="R2", p_churn=0.01),
        customer(7, rm_id="R2", eligible_churn=False, p_churn=0.90),
    )
    lists = build_lists(scored, RMS, POLICY)
    assert listed(lists) == {"R1": [2, 4], "R2": [5]}


def test_k_overrides_every_capacity_outlets_too():
    scored = frame(
        customer(1, rm_id="R3", p_churn=0.10),
        customer(2, rm_id="R3", p_churn=0.20),
        customer(3, rm_id="R1", p_churn=0.30),
        customer(4, rm_id="R1", p_churn=0.40),
        customer(5, rm_id="R1", p_churn=0.50),
        customer(6, rm_id=None, outlet_id="O7", p_churn=0.60),
        customer(7, rm_id=None, outlet_id="O7", p_churn=0.70),
    )
    assert listed(build_lists(scored, RMS, POLICY, k=1)) == {
        "R1": [5],
        "R3": [2],
        "outlet_O7": [7],
    }
    # k above the RM's capacity lets the list grow, still never beyond who qualifies
    assert listed(build_lists(scored, RMS, POLICY, k=3)) == {
        "R1": [5, 4, 3],
        "R3": [2, 1],
        "outlet_O7": [7, 6],
    }


def test_customers_without_an_rm_are_on_their_outlets_list_at_the_outlet_capacity():
    scored = frame(
        *[customer(i, rm_id=None, outlet_id="O7", p_churn=i / 10) for i in range(1, 6)],
        customer(6, rm_id="R1", outlet_id="O7", p_churn=0.90),
    )
    # the policy's outlet capacity
    policy = POLICY.model_copy(update={"outlet_capacity": 1})
    assert listed(build_lists(scored, RMS, policy)) == {"R1": [6], "outlet_O7": [5]}
    # none set: the median RM's capacity (2, 3, 10 → 3)
    assert listed(build_lists(scored, RMS, POLICY)) == {"R1": [6], "outlet_O7": [5, 4, 3]}


def test_capacities_per_owner():
    owners = pd.Series(["R1", "R2", "outlet_O7", "R1", "R9"])
    assert capacities(RMS, owners, None, POLICY) == {"R1": 2, "R2": 3, "outlet_O7": 3, "R9": 3}
    policy = POLICY.model_copy(update={"outlet_capacity": 5})
    assert capacities(RMS, owners, None, policy)["outlet_O7"] == 5
    assert capacities(RMS, owners, 7, policy) == {"R1": 7, "R2": 7, "outlet_O7": 7, "R9": 7}
    no_rms = RMS.iloc[:0]
    assert capacities(no_rms, pd.Series(["outlet_O7"]), None, POLICY) == {
        "outlet_O7": DEFAULT_CAPACITY
    }


def test_integer_rm_ids_read_back_with_gaps_keep_their_list_and_capacity():
    rms = pd.DataFrame({"rm_id": [1, 2, 3], "capacity": [1, 10, 10]})
    scored = frame(
        customer(1, p_churn=0.30),
        customer(2, p_churn=0.20),
        customer(3, p_churn=0.10),
        customer(4, rm_id=None, outlet_id=7, p_churn=0.40),
    )
    # what pd.read_parquet gives for an int64 column with a null
    scored["rm_id"] = [1.0, 1.0, 1.0, np.nan]
    assert listed(build_lists(scored, rms, POLICY)) == {"1": [1], "outlet_7": [4]}


# --- who is listed, in which order ------------------------------------------------------


def test_customers_already_leaving_come_first_then_by_expected_loss_ties_by_id():
    scored = frame(
        customer(1, p_churn=0.90, contribution_12m=10_000.0),  # loss 9,000
        # leaving: not eligible, whatever the model said; p_churn = 1, loss = contribution
        customer(2, leaving_now=True, eligible_churn=False, p_churn=0.01, contribution_12m=500.0),
        customer(
            3, leaving_now=True, eligible_churn=False, p_churn=np.nan, contribution_12m=2000.0
        ),  # fmt: skip
        customer(4, p_churn=0.50, contribution_12m=20_000.0),  # loss 10,000
        customer(5, p_churn=0.20, contribution_12m=-300.0),  # negative contribution: loss 0
        customer(12, p_churn=0.25, contribution_12m=400.0),  # loss 100
        customer(8, p_churn=0.50, contribution_12m=200.0),  # loss 100: tie, smaller id first
    )
    lists = build_lists(scored, RMS, POLICY)
    assert lists["customer_id"].tolist() == [3, 2, 4, 1, 8, 12, 5]
    assert lists["rank"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert lists["leaving_now"].tolist() == [True, True, False, False, False, False, False]
    assert lists["p_churn"].tolist() == [1.0, 1.0, 0.50, 0.90, 0.50, 0.25, 0.20]
    assert lists["expected_loss"].tolist() == [2000.0, 500.0, 10_000.0, 9000.0, 100.0, 100.0, 0.0]


def test_leaving_customers_take_the_places_when_capacity_is_short():
    scored = frame(
        customer(1, rm_id="R1", p_churn=0.99, contribution_12m=1_000_000.0),
        customer(2, rm_id="R1", leaving_now=True, eligible_churn=False, contribution_12m=10.0),
        customer(3, rm_id="R1", leaving_now=True, eligible_churn=False, contribution_12m=-5.0),
    )
    lists = build_lists(scored, RMS, POLICY)
    assert listed(lists) == {"R1": [2, 3]}
    assert lists["expected_loss"].tolist() == [10.0, 0.0]


def test_only_eligible_customers_at_or_above_the_minimum_risk_or_leaving_are_listed():
    scored = frame(
        customer(1, p_churn=0.05),  # at the minimum: listed
        customer(2, p_churn=0.0499),  # below: not
        customer(3, eligible_churn=False, p_churn=0.90),  # not eligible, not leaving: not
        customer(4, eligible_churn=None, p_churn=0.90),  # eligibility unknown: not
        customer(5, eligible_churn=False, leaving_now=True, p_churn=0.0),  # leaving: listed
        customer(6, p_churn=np.nan),  # no score: not
    )
    assert listed(build_lists(scored, RMS, POLICY)) == {"R3": [5, 1]}
    stricter = POLICY.model_copy(update={"min_risk": 0.30})
    scored = frame(customer(1, p_churn=0.29), customer(2, p_churn=0.30), customer(3, p_churn=0.9))
    assert listed(build_lists(scored, RMS, stricter)) == {"R3": [3, 2]}


def test_do_not_contact_is_never_listed_and_missing_means_do_not_contact():
    scored = frame(
        customer(1, p_churn=0.50),
        customer(2, p_churn=0.90, do_not_contact=True),
        customer(3, leaving_now=True, eligible_churn=False, do_not_contact=True),
        customer(4, p_churn=0.90, do_not_contact=None),
        customer(5, leaving_now=True, eligible_churn=False, do_not_contact=None),
        calm(6, 100.0),
        calm(7, 900.0, do_not_contact=True),
        calm(8, 900.0, do_not_contact=None),
    )
    lists = build_lists(scored, RMS, POLICY)
    assert listed(lists) == {"R3": [1]}
    assert listed(build_growth_lists(scored, RMS, POLICY, lists)) == {"R3": [6]}


# --- the assignment: control within capacity, exploration below it ----------------------


def book(rm_id: str, first_id: int, n: int, leaving: int = 0) -> list[dict]:
    """``n`` at-risk customers of ``rm_id`` (expected loss rising with the id, growth offers
    worth something) and ``leaving`` customers already leaving after them."""
    rows = [
        customer(
            first_id + i, rm_id=rm_id, p_churn=0.05 + i / 100, value_added=50.0, growth_offer="fund"
        )  # fmt: skip
        for i in range(n)
    ]
    rows += [
        customer(first_id + n + i, rm_id=rm_id, leaving_now=True, eligible_churn=False)
        for i in range(leaving)
    ]
    return rows


def assigned(scored: pd.DataFrame, policy: ListPolicy, cutoff: str = CUTOFF) -> pd.DataFrame:
    """``scored`` with the leaving rule and its assignment, as ``retain score`` lists it."""
    scored = leaving_adjusted(scored)
    return scored.join(assignments(scored, RMS, policy, cutoff))


def ids(frame: pd.DataFrame, group: str) -> set[int]:
    return set(frame.loc[frame["list_group"] == group, "customer_id"])


def test_control_is_drawn_within_capacity_and_exploration_below_it():
    # R3 takes 10: 2 already leaving, 8 places; 2 of them (20%) for exploration, so the
    # ranked places are the 6 largest expected losses (ids 134..139)
    policy = POLICY.model_copy(update={"control_share": 0.2, "explore_share": 0.2})
    scored = assigned(frame(*book("R3", 100, 40, leaving=2)), policy)
    top = set(range(134, 140))
    control, treated, explore = ids(scored, CONTROL), ids(scored, TREATED), ids(scored, EXPLORE)
    assert control <= top and (treated - {140, 141}) <= top and control | treated >= top
    below = set(range(100, 134))
    assert explore <= below and ids(scored, NONE) == below - explore
    assert len(explore) == 2 + len(control)  # the places the control freed are explored too
    p = scored.set_index("customer_id")["p_treat"]
    assert (p[sorted(top)] == 0.8).all()  # 1 − control_share
    assert np.allclose(p[sorted(below)], (2 + len(control)) / 34)  # slots / pool
    assert (p[[140, 141]] == 1.0).all()  # already leaving: called by rule
    lists = build_lists(scored, RMS, policy)
    # leaving first, then the treated by expected loss, then the explored below the cut
    ranked = sorted(treated - {140, 141}, reverse=True)
    assert listed(lists)["R3"][:2] == [140, 141]  # equal losses: by id
    assert listed(lists)["R3"][2:] == ranked + sorted(explore, reverse=True)
    assert len(lists) == 10  # capacity used: nobody called is held back, nobody added


def test_the_assignment_is_the_same_for_the_same_cutoff_and_another_for_another():
    policy = POLICY.model_copy(update={"control_share": 0.25, "explore_share": 0.2})
    scored = frame(*book("R3", 100, 40))

    def drawn(frame: pd.DataFrame, cutoff: str) -> tuple[set, set]:
        done = assigned(frame, policy, cutoff)
        return ids(done, CONTROL), ids(done, EXPLORE)

    first = drawn(scored, CUTOFF)
    assert first[0] and first[1]
    assert drawn(scored, CUTOFF) == first
    shuffled = scored.sample(frac=1, random_state=3).reset_index(drop=True)
    assert drawn(shuffled, CUTOFF) == first  # by customer id and cutoff, not row position
    assert drawn(scored, "2024-11-30") != first


def test_control_customers_are_on_no_list_nor_a_growth_list():
    policy = POLICY.model_copy(update={"control_share": 0.3})
    scored = assigned(frame(*book("R3", 100, 20)), policy)
    control = ids(scored, CONTROL)
    assert control
    lists = build_lists(scored, RMS, policy)
    assert not control & set(lists["customer_id"])
    growth = build_growth_lists(scored, RMS, policy, lists)
    assert not control & set(growth["customer_id"])
    # even a customer marked control who is not at risk stays off the growth list
    scored = frame(calm(1, 500.0), calm(2, 400.0))
    scored["list_group"] = [CONTROL, None]
    growth = build_growth_lists(scored, RMS, policy, build_lists(scored, RMS, policy))
    assert listed(growth) == {"R3": [2]}
    assert growth_listed(scored, policy).tolist() == [False, True]


def test_without_control_or_exploration_the_list_is_the_ranking():
    scored = assigned(frame(*book("R3", 100, 30, leaving=2)), POLICY)
    assert ids(scored, CONTROL) == ids(scored, EXPLORE) == set()
    assert ids(scored, TREATED) == set(range(122, 132))  # 8 ranked + 2 leaving
    assert scored.loc[scored["list_group"] == NONE, "p_treat"].eq(0).all()
    assert len(build_lists(scored, RMS, POLICY)) == 10


def test_leaving_and_unlistable_customers_are_never_drawn():
    policy = POLICY.model_copy(update={"control_share": 0.5, "explore_share": 0.5})
    scored = assigned(
        frame(
            *book("R3", 100, 4, leaving=10),
            customer(300, p_churn=0.01),  # not at risk: no group
            customer(301, p_churn=0.90, do_not_contact=True),  # never contacted: no group
        ),
        policy,
    )
    leaving = scored["leaving_now"].astype(bool)
    assert scored.loc[leaving, "list_group"].eq(TREATED).all()
    assert scored.loc[leaving, "p_treat"].eq(1).all()
    assert scored.loc[scored["customer_id"].isin([300, 301]), "list_group"].isna().all()


def test_do_not_contact_customers_have_no_group():
    scored = frame(
        customer(1, p_churn=0.50),
        customer(2, p_churn=0.90, do_not_contact=True),
        customer(4, p_churn=0.90, do_not_contact=None),
    )
    groups = assignments(leaving_adjusted(scored), RMS, POLICY, CUTOFF)["list_group"]
    assert groups.tolist() == [TREATED, None, None]


# --- growth lists -----------------------------------------------------------------------


def growth_book() -> pd.DataFrame:
    return frame(
        calm(1, 50.0),
        calm(2, 300.0),
        calm(3, 200.0),
        calm(4, 200.0, eligible_churn=False),  # not eligible for churn, not at risk: may grow
        calm(5, 150.0),  # fourth by value: beyond the growth capacity of 3
        calm(6, 1000.0, p_churn=0.05),  # at the minimum risk: at risk
        calm(7, 1000.0, leaving_now=True, eligible_churn=False),
        calm(8, 0.0),  # nothing worth adding
        calm(9, 80.0, growth_offer=None),  # no offer
        calm(10, 900.0, do_not_contact=True),
        calm(11, 70.0, rm_id=None, outlet_id="O7"),
        calm(12, 60.0, rm_id=None, outlet_id="O7", p_churn=np.nan),  # no score: not calm
    )


def test_growth_lists_take_calm_customers_with_an_offer_ranked_by_value_cut_at_capacity():
    scored = growth_book()
    retention = build_lists(scored, RMS, POLICY)
    growth = build_growth_lists(scored, RMS, POLICY, retention)
    assert listed(growth) == {"R3": [2, 3, 4], "outlet_O7": [11]}
    assert growth["value_added"].tolist() == [300.0, 200.0, 200.0, 70.0]
    # a growth row shows its own offer's propensity, action and reasons
    assert growth["offer_propensity"].tolist() == [0.4] * 4
    assert growth["action"].tolist() == ["offer_product"] * 4
    assert growth["reason_1"].tolist() == ["growth reason 1"] * 4
    # the at-risk and leaving customers are on the retention list instead
    assert listed(retention) == {"R3": [7, 6]}


def test_a_customer_on_a_retention_list_is_not_on_a_growth_list():
    scored = growth_book()
    retention = pd.DataFrame({"customer_id": [2, 3]})
    growth = build_growth_lists(scored, RMS, POLICY, retention)
    assert listed(growth) == {"R3": [4, 5, 1], "outlet_O7": [11]}


def test_growth_capacity_cuts_every_growth_list():
    scored = growth_book()
    one = POLICY.model_copy(update={"growth_capacity": 1})
    assert listed(build_growth_lists(scored, RMS, one, scored.iloc[:0])) == {
        "R3": [2],
        "outlet_O7": [11],
    }
    # room for all: still only those with an offer worth something
    ten = POLICY.model_copy(update={"growth_capacity": 10})
    assert listed(build_growth_lists(scored, RMS, ten, scored.iloc[:0])) == {
        "R3": [2, 3, 4, 5, 1],
        "outlet_O7": [11],
    }
    none = POLICY.model_copy(update={"growth_capacity": 0})
    assert build_growth_lists(scored, RMS, none, scored.iloc[:0]).empty
    assert not growth_listed(scored, none).any()


@pytest.mark.parametrize("capacity", [0, 1, 2, 3, 10])
def test_growth_listed_picks_the_rows_the_growth_lists_list(capacity):
    scored = growth_book()
    policy = POLICY.model_copy(update={"growth_capacity": capacity})
    growth = build_growth_lists(scored, RMS, policy, build_lists(scored, RMS, policy))
    rows = growth_listed(scored, policy)
    assert rows.dtype == bool and len(rows) == len(scored)
    assert sorted(scored.loc[rows, "customer_id"]) == sorted(growth["customer_id"])
    if capacity == 3:
        assert scored.loc[rows, "customer_id"].tolist() == [2, 3, 4, 11]


# --- lists by saved value ---------------------------------------------------------------


def test_by_saved_value_a_call_that_does_not_help_is_never_made():
    # the largest expected losses first by risk; by saved value the persuadable first, and
    # the lost cause (τ̂ = 0) and the sleeping dog (τ̂ < 0) never, however risky
    scored = frame(
        customer(1, p_churn=0.90, contribution_12m=9000.0, uplift=0.0, saved_value=0.0),
        customer(2, p_churn=0.80, contribution_12m=8000.0, uplift=-0.05, saved_value=-400.0),
        customer(3, p_churn=0.20, contribution_12m=5000.0, uplift=0.10, saved_value=500.0),
        customer(4, p_churn=0.30, contribution_12m=1000.0, uplift=0.20, saved_value=200.0),
        customer(5, leaving_now=True, eligible_churn=False, uplift=-0.1, saved_value=-100.0),
    )
    scored = leaving_adjusted(scored)
    done = scored.join(assignments(scored, RMS, POLICY, CUTOFF, score="saved_value"))
    assert listed(build_lists(done, RMS, POLICY)) == {"R3": [5, 3, 4]}  # leaving by rule first
    assert done.set_index("customer_id").loc[[1, 2], "list_group"].isna().all()
    by_risk = scored.drop(columns=["uplift", "saved_value"])
    by_risk = by_risk.join(assignments(by_risk, RMS, POLICY, CUTOFF))
    assert listed(build_lists(by_risk, RMS, POLICY)) == {"R3": [5, 1, 2, 3, 4]}
