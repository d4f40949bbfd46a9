"""A call's effect and the bank's earlier retention campaigns (synthetic.campaign): both
potential outcomes in the truth, lists drawn as the policy says with known probabilities, and
realised exits that follow the realised calls. Without a campaign nothing moves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from features.catalog import DRIVERS
from features.schema import validate_warehouse
from features.sources.files import read_meta, read_table, table_files, table_glob
from features.targets import CHURN, RESPONSE_TYPE
from synthetic import bank as bank_module
from synthetic.bank import write_bank
from synthetic.campaign import (
    LOST_CAUSE,
    PERSUADABLE,
    RESPONSE_TYPES,
    SLEEPING_DOG,
    SURE_THING,
    called_hazard,
    response_types,
)
from synthetic.config import Campaign, RegimeChange, SynthConfig, SynthConfigError
from synthetic.config import synth_config_from_toml as from_toml
from synthetic.truth import churn_called_within, churn_within
from tests import retain_process

P0, P1 = CHURN.truth_source(3), CHURN.truth_called_source(3)
# sha256 over every file of write_bank(SMALL): computed with the generator before campaigns
# existed (commit d0e69f2); a bank without a campaign must not change by a byte
SMALL = SynthConfig(customers=1_500, months=8, seed=5, ids="string")
SMALL_SHA256 = "e555c101aacc0f9d3befc18a53219ab5b4871824cd2d6f2eec3ba7a5aa2d8e24"
# half the lists held back and a strong call, so that 20,000 customers show the effect
CAMPAIGN = Campaign(
    start="2023-04-30",
    control_share=0.5,
    capacity_share=0.6,
    persuadable_effect=0.8,
    reach=0.9,
)
LARGE = SynthConfig(customers=20_000, seed=13, campaign=CAMPAIGN)
Z95 = norm.ppf(0.975)


def _tree_sha256(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_without_a_campaign_the_bank_is_byte_identical_to_before(tmp_path):
    write_bank(SMALL, tmp_path / "bank")
    assert _tree_sha256(tmp_path / "bank") == SMALL_SHA256
    assert "campaign" not in read_meta(tmp_path / "bank")
    assert not table_files(tmp_path / "bank", "list_assignments")


# ---------------------------------------------------------------------------- the call effect


def test_the_called_probability_is_exact_on_hand_made_hazards():
    hazard = np.array([[0.1, 0.1, 0.1, 0.1], [0.02, 0.04, 0.06, 0.08]])  # 1 cutoff + 3
    cut, added = np.array([[0.5], [0.0]]), np.array([[0.0], [0.03]])
    p = churn_called_within(hazard, cut, added, reach=0.8)
    reached = [1 - 0.95**3, 1 - np.prod([1 - (h + 0.03 - h * 0.03) for h in (0.02, 0.04, 0.06)])]
    uncalled = churn_within(hazard)[:, 0]
    np.testing.assert_allclose(p[:, 0], 0.8 * np.array(reached) + 0.2 * uncalled)
    assert p[0, 0] < uncalled[0] and p[1, 0] > uncalled[1]  # persuaded; pushed away
    # no effect, not even a rounding difference
    assert (churn_called_within(hazard, cut * 0, added * 0, 0.8) == uncalled[:, None]).all()
    assert called_hazard(np.array([0.2]), np.array([0.5]), np.array([0.0]))[0] == pytest.approx(0.1)


def _drivers(*names: str) -> np.ndarray:
    on = np.zeros((1, len(DRIVERS)), dtype=bool)
    for name in names:
        on[0, DRIVERS.index(name)] = True
    return on


TYPE_CASES = [  # (drivers on, months on, maturing soon, dormant, hidden high) → type
    ((), 0, False, False, False, SURE_THING),
    ((), 0, False, True, False, SLEEPING_DOG),
    ((), 0, True, True, False, PERSUADABLE),  # a maturity is a reason to call
    (("complaint",), 1, False, False, False, PERSUADABLE),
    (("rm_neglect",), 5, False, True, False, PERSUADABLE),
    (("outflow_other_bank",), 2, False, False, False, PERSUADABLE),  # can still be stopped
    (("outflow_other_bank",), 3, False, False, False, LOST_CAUSE),  # the money has gone
    (("balance_decline",), 4, False, False, False, LOST_CAUSE),
    (("salary_loss", "complaint"), 1, False, False, False, LOST_CAUSE),
    (("complaint",), 1, False, False, True, LOST_CAUSE),  # the hidden term
    ((), 0, False, False, True, SURE_THING),  # nothing on: nothing to lose
]


@pytest.mark.parametrize(("on", "months", "maturing", "dormant", "hidden", "expected"), TYPE_CASES)
def test_response_types_follow_the_drivers(on, months, maturing, dormant, hidden, expected):
    drivers = _drivers(*on)
    found = response_types(
        "heterogeneous",
        drivers,
        drivers * months,
        np.array([maturing]),
        np.array([dormant]),
        np.array([hidden]),
        early_months=2,
    )
    assert RESPONSE_TYPES[found[0]] == RESPONSE_TYPES[expected]


def test_other_structures_move_the_sleeping_dogs_or_follow_risk():
    drivers = np.concatenate([_drivers("outflow_other_bank"), _drivers(), _drivers("salary_loss")])
    dormant, nothing = np.array([False, True, False]), np.zeros(3, dtype=bool)
    args = (drivers, drivers * 4, nothing, dormant, nothing, 2)
    risky = response_types("sleeping_dogs_among_risky", *args)
    assert list(risky) == [SLEEPING_DOG, SURE_THING, LOST_CAUSE]
    assert list(response_types("follows_risk", *args)) == [PERSUADABLE] * 3


# ------------------------------------------------------------------ a bank with a campaign


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("campaign") / "bank"
    write_bank(LARGE, out)
    return out


@pytest.fixture(scope="module")
def rows(large) -> pd.DataFrame:
    """list_assignments joined to the truth at the cutoff and the realised exit."""
    assignments = read_table(large, "list_assignments")
    truth = read_table(large, "truth", ["customer_id", "month", P0, P1, RESPONSE_TYPE])
    customers = read_table(large, "truth", ["customer_id", "exit_month"]).drop_duplicates()
    frame = assignments.merge(
        truth, left_on=["customer_id", "cutoff"], right_on=["customer_id", "month"], how="left"
    ).merge(customers, on="customer_id", how="left")
    cutoff, exit_month = pd.to_datetime(frame["cutoff"]), pd.to_datetime(frame["exit_month"])
    frame["left_3m"] = (exit_month > cutoff) & (exit_month <= cutoff + pd.offsets.MonthEnd(3))
    frame["tau"] = frame[P0] - frame[P1]
    return frame


def test_one_row_per_listable_customer_and_cutoff_with_valid_groups(rows, large):
    assert len(rows) > 50_000
    assert not rows.duplicated(["customer_id", "cutoff"]).any()
    assert set(rows["group"]) == {"treated", "control", "explore", "none"}
    assert rows["p_treat"].gt(0).all() and rows["p_treat"].lt(1).all()
    assert rows[P0].notna().all()  # every assigned customer-month has its truth
    cutoffs = pd.to_datetime(rows["cutoff"])
    months = LARGE.month_ends
    assert cutoffs.min() == pd.Timestamp(CAMPAIGN.start) and cutoffs.max() == months[-2]
    assert cutoffs.dt.is_month_end.all()
    meta = read_meta(large)["campaign"]
    assert meta["assignments"] == rows["group"].value_counts().to_dict()


def test_control_is_drawn_within_the_cut_and_exploration_below_it(rows, large):
    """Ranks run 1..n in each list and cutoff; treated and control hold the first ranks, at
    most the RM's capacity less the exploration slots; explore and none rank below them."""
    for _, group in rows.groupby(["list_id", "cutoff"]):
        ranks = np.sort(group["rank"].to_numpy())
        assert (ranks == np.arange(1, len(group) + 1)).all()
        within = group["group"].isin(["treated", "control"])
        if within.any() and (~within).any():
            assert group.loc[within, "rank"].max() < group.loc[~within, "rank"].min()
    rms = read_table(large, "rms").set_index("rm_id")["capacity"]
    on_rm_lists = rows[rows["list_id"].isin(rms.index)]
    within = on_rm_lists[on_rm_lists["group"].isin(["treated", "control"])]
    per_list = within.groupby(["list_id", "cutoff"]).size()
    capacity = per_list.index.get_level_values(0).map(rms)
    slots = capacity * CAMPAIGN.capacity_share
    cut = np.floor((1 - CAMPAIGN.exploration_share) * slots + 0.5)
    assert (per_list.to_numpy() <= cut).all()
    assert (per_list.to_numpy() == cut).mean() > 0.5  # most lists fill their cut


def test_the_rule_of_thumb_puts_the_largest_declines_within_the_cut(rows, large):
    """The earlier policy ranks by the AUM that left over three months, read back from the
    balances: in every list, nobody below the cut lost more than anyone within it."""
    balances, products = table_glob(large, "balances"), table_glob(large, "products")
    aum = duckdb.sql(
        f"""select customer_id, month, sum(avg_daily_balance) as aum
            from read_parquet('{balances}') join read_parquet('{products}') using (product)
            where kind = 'asset' group by all"""
    ).df()
    aum["month"] = pd.to_datetime(aum["month"])
    earlier = aum.assign(month=aum["month"] + pd.offsets.MonthEnd(3))
    both = aum.merge(earlier, on=["customer_id", "month"], suffixes=("", "_before"))
    both["decline"] = (both["aum_before"] - both["aum"]).clip(lower=0)
    scored = rows.assign(cutoff=pd.to_datetime(rows["cutoff"])).merge(
        both, left_on=["customer_id", "cutoff"], right_on=["customer_id", "month"]
    )
    assert len(scored) == len(rows)
    scored["within"] = scored["group"].isin(["treated", "control"])
    by_list = scored.groupby(["list_id", "cutoff", "within"])["decline"]
    lowest_within = by_list.min().xs(True, level="within")
    highest_below = by_list.max().xs(False, level="within")
    lists = lowest_within.index.intersection(highest_below.index)
    assert len(lists) > 100
    # balances are rounded to cents: a tie may differ by a few cents
    assert (lowest_within[lists] >= highest_below[lists] - 1.0).all()


def test_p_treat_is_each_groups_probability(rows):
    """Within the cut a customer is held back with the control share; below it drawn with its
    p_treat — shares within ±2 points over more than 20,000 draws, and the explore count within
    four standard errors of the sum of the probabilities."""
    within = rows[rows["group"].isin(["treated", "control"])]
    below = rows[rows["group"].isin(["explore", "none"])]
    assert len(within) > 20_000 and len(below) > 20_000
    assert (within["p_treat"] == 1 - CAMPAIGN.control_share).all()
    assert abs((within["group"] == "control").mean() - CAMPAIGN.control_share) < 0.02
    explored = below["group"] == "explore"
    assert abs(explored.mean() - below["p_treat"].mean()) < 0.02
    p = below["p_treat"]
    assert abs(explored.sum() - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    # where the lists are long enough, the exploration takes its share of the called slots
    called = rows[rows["group"] != "none"]
    long = (
        below.groupby(["list_id", "cutoff"])["p_treat"].first() < CAMPAIGN.max_explore_probability
    )
    called = called.set_index(["list_id", "cutoff"]).loc[long[long].index]
    assert len(called) > 10_000
    explore_share = (called["group"] == "explore").mean()
    assert abs(explore_share - CAMPAIGN.exploration_share) < 0.02


def test_realised_exits_show_the_calls_effect(rows):
    """Treated against control within the cut: the realised difference in leaving within 3
    months holds the truth's average effect within its 95% interval, and is not zero; each
    group leaves as often as its own potential outcome says."""
    within = rows[rows["group"].isin(["treated", "control"])]
    treated, control = (within[within["group"] == g] for g in ("treated", "control"))
    rate_t, rate_c = treated["left_3m"].mean(), control["left_3m"].mean()
    se = np.sqrt(rate_t * (1 - rate_t) / len(treated) + rate_c * (1 - rate_c) / len(control))
    effect = within["tau"].mean()
    assert abs((rate_c - rate_t) - effect) < Z95 * se
    assert rate_c - rate_t > Z95 * se  # the effect shows
    for group, column in ((treated, P1), (control, P0)):
        rate, p = group["left_3m"].mean(), group[column].mean()
        assert abs(rate - p) < Z95 * np.sqrt(p * (1 - p) / len(group))


def test_effects_by_response_type(large):
    truth = read_table(large, "truth", ["month", P0, P1, RESPONSE_TYPE]).dropna()
    truth["tau"] = truth[P0] - truth[P1]
    by_type = truth.groupby(RESPONSE_TYPE)["tau"]
    assert set(by_type.groups) == set(RESPONSE_TYPES)
    assert (by_type.get_group("sleeping_dog") < 0).all()
    assert (by_type.get_group("persuadable") >= 0).all() and by_type.mean()["persuadable"] > 0.01
    for kind in ("lost_cause", "sure_thing"):
        assert by_type.get_group(kind).abs().max() == 0.0
    shares = truth[RESPONSE_TYPE].value_counts(normalize=True)
    assert 0.005 < shares["sleeping_dog"] < 0.06  # a small group


def test_reached_calls_are_interactions_in_the_month_after_the_cutoff(rows, large):
    """A called customer is reached (a contact in the first two weeks after the cutoff) with
    probability ``reach``; the RMs' usual contacts go on for everyone."""
    interactions = read_table(large, "interactions", ["customer_id", "ts"])
    interactions["month"] = interactions["ts"].dt.to_period("M")
    early = interactions[interactions["ts"].dt.day <= 14][["customer_id", "month"]]
    contacted = set(zip(early["customer_id"], early["month"], strict=True))
    cutoff = pd.to_datetime(rows["cutoff"]).dt.to_period("M") + 1
    keys = zip(rows["customer_id"], cutoff, strict=True)
    rows = rows.assign(contacted=[key in contacted for key in keys])
    share = rows.groupby("group")["contacted"].mean()
    # contacted = reached, or not reached and called as usual (as often as the uncalled)
    for called, uncalled in (("treated", "control"), ("explore", "none")):
        reached = (share[called] - share[uncalled]) / (1 - share[uncalled])
        assert abs(reached - CAMPAIGN.reach) < 0.03, called
    called = rows["group"].isin(["treated", "explore"]).sum()
    reached = read_meta(large)["campaign"]["calls_reached"]
    assert abs(reached / called - CAMPAIGN.reach) < 0.02


# ------------------------------------------------------------------ chunks, options, errors


def test_ranks_run_over_chunks(tmp_path, monkeypatch):
    """A bank of several chunks ranks each list as a whole: the ranks of a list and cutoff run
    1..n over all parts, within the cut first."""
    monkeypatch.setattr(bank_module, "CHUNK_SIZE", 1_000)
    config = SynthConfig(
        customers=3_000, months=8, seed=2, ids="string", campaign={"start": "2024-08-31"}
    )
    write_bank(config, tmp_path / "bank")
    parts = table_files(tmp_path / "bank", "list_assignments")
    assert len(parts) == 3
    rows = read_table(tmp_path / "bank", "list_assignments")
    assert rows["customer_id"].str.startswith("C").all()
    for _, group in rows.groupby(["list_id", "cutoff"]):
        ranks = group.sort_values("rank")
        assert (ranks["rank"].to_numpy() == np.arange(1, len(group) + 1)).all()
        within = ranks["group"].isin(["treated", "control"]).to_numpy()
        assert (np.sort(within)[::-1] == within).all()
    assert validate_warehouse(tmp_path / "bank") == []


def test_a_campaign_without_history_only_adds_the_truths_columns(tmp_path):
    config = SMALL.model_copy(update={"campaign": Campaign()})
    write_bank(config, tmp_path / "bank")
    write_bank(SMALL, tmp_path / "plain")
    assert not table_files(tmp_path / "bank", "list_assignments")
    for table in ("balances", "transactions", "interactions", "complaints"):
        assert read_table(tmp_path / "bank", table).equals(read_table(tmp_path / "plain", table))
    truth, plain = (read_table(tmp_path / b, "truth") for b in ("bank", "plain"))
    assert truth.drop(columns=[P1, RESPONSE_TYPE]).equals(plain)
    assert (truth[P1] < truth[P0]).any() and (truth[P1] > truth[P0]).any()


def test_a_campaign_and_a_regime_together_make_a_valid_bank(tmp_path):
    config = SynthConfig(
        customers=1_000,
        months=10,
        seed=4,
        campaign={"start": "2024-06-30", "policy": "risk", "exploration_share": 0},
        regime=RegimeChange(start="2024-08-31", withdrawn=("mutual_fund",)),
    )
    write_bank(config, tmp_path / "bank")
    rows = read_table(tmp_path / "bank", "list_assignments")
    assert set(rows["group"]) == {"treated", "control"}  # no exploration: no row below the cut
    assert validate_warehouse(tmp_path / "bank") == []


BAD_CAMPAIGNS = [  # (campaign table, what the error says)
    ({"start": "2024-12-31"}, "campaign.start 2024-12-31 is outside 2024-04-30..2024-11-30"),
    ({"start": "2024-02-29"}, "outside 2024-04-30..2024-11-30"),
    ({"start": "2024-06-15"}, "synthetic.campaign.start: start must be a month-end date"),
    ({"start": "2024-06-30", "end": "2024-05-31"}, "needs a start on or before it"),
    ({"end": "2024-06-30"}, "needs a start on or before it"),
    ({"control_share": 0}, "synthetic.campaign.control_share: Input should be greater than 0"),
    ({"reach": 1.5}, "synthetic.campaign.reach: Input should be less than or equal to 1"),
    ({"structure": "uniform"}, "synthetic.campaign.structure: Input should be"),
    ({"policy": "lottery"}, "synthetic.campaign.policy: Input should be"),
    ({"calls": 3}, "synthetic.campaign.calls: unknown key"),
]


@pytest.mark.parametrize(("campaign", "message"), BAD_CAMPAIGNS)
def test_bad_campaigns_are_one_line_errors(campaign, message):
    with pytest.raises(SynthConfigError) as error:
        from_toml({"synthetic": {"months": 12, "campaign": campaign}})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_overrides_win_key_by_key_over_the_campaign_table():
    payload = {"synthetic": {"months": 12, "campaign": {"start": "2024-05-31", "reach": 0.6}}}
    config = from_toml(payload, overrides={"campaign": {"start": "2024-07-31"}})
    assert config.campaign.start.isoformat() == "2024-07-31" and config.campaign.reach == 0.6
    assert config.campaign_months == (6, 10)


def test_retain_synth_reads_the_campaign_from_the_configuration(tmp_path):
    (tmp_path / "retain.toml").write_text(
        '[synthetic.campaign]\nstart = 2024-10-31\nstructure = "follows_risk"\n'
    )
    args = ["--customers", "400", "--months", "6", "--config", "retain.toml", "--out", "bank"]
    result = retain_process.run(["synth", *args], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "bank" / "_meta.json").read_text())
    assert meta["config"]["campaign"]["structure"] == "follows_risk"
    assert meta["rows"]["list_assignments"] > 0
    types = read_table(tmp_path / "bank", "truth")[RESPONSE_TYPE].dropna()
    assert set(types) == {"persuadable"}
