"""The feature catalog: every entry is complete, renders cleanly and carries the right flags."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.catalog import (
    CATALOG_VERSION,
    DOMAINS,
    DRIVERS,
    Case,
    Feature,
    Growth,
    catalog,
    feature_names,
)
from features.config import BankConfig, Names, Product, Tier, TierLadder
from synthetic.config import DEFAULT_CATALOGUE, as_products

PRODUCTS = as_products(DEFAULT_CATALOGUE)
FEATURES = list(catalog(PRODUCTS).values())
NUMERIC_VALUES = [
    0,
    0.0,
    -0.35,
    -1,
    1,
    2,
    0.5,
    0.004,
    3.7,
    12_000.0,
    1_234_567.89,
    9e9,
    np.float64(-0.2),
    np.int64(3),
]
BOOL_VALUES = [True, False, np.True_, np.False_, 0, 1]


def assert_clean(text: str, feature: Feature) -> None:
    assert text, f"{feature.name}: empty text"
    assert "{" not in text and "}" not in text, f"{feature.name}: placeholder left in {text!r}"
    assert "nan" not in text.lower(), f"{feature.name}: 'nan' in {text!r}"
    assert "inf" not in text.lower(), f"{feature.name}: 'inf' in {text!r}"


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_feature_renders_cleanly(feature: Feature, lang: str) -> None:
    values = BOOL_VALUES if feature.dtype == "bool" else NUMERIC_VALUES
    for value in [*values, None, float("nan"), math.inf]:
        assert_clean(feature.reason(value, lang), feature)
    assert feature.label(lang)


# Up to ten thousand times the largest plausible amount; NaN and ±inf stand for missing.
PLAUSIBLE = st.floats(min_value=-1e15, max_value=1e15) | st.sampled_from([math.nan, -math.inf])


@settings(max_examples=60, deadline=None)
@given(value=PLAUSIBLE | st.integers(-(10**12), 10**12))
def test_any_number_renders_cleanly(value: float) -> None:
    for feature in FEATURES:
        for lang in ("zh", "en"):
            assert_clean(feature.reason(value, lang), feature)


@settings(max_examples=30, deadline=None)
@given(fall=st.floats(min_value=0.0, max_value=1e6), rise=st.floats(min_value=1e-9, max_value=1e6))
def test_negated_values_never_show_a_minus(fall: float, rise: float) -> None:
    negated = [feature for feature in FEATURES if feature.reason_value == "negate"]
    assert negated
    for feature in negated:
        for lang in ("zh", "en"):
            assert "-" not in feature.reason(-fall, lang), feature.name
            assert "+" in feature.reason(rise, lang), feature.name


def test_known_texts() -> None:
    features = catalog(PRODUCTS)
    aum_change = features["aum_change_3m"]
    assert aum_change.reason(-0.35, "zh") == "近3个月资产下降35%"
    assert aum_change.reason(-0.35, "en") == "AUM down 35% over the last 3 months"
    # A rise is not written as "down -12%" but stated plainly.
    assert aum_change.reason(0.12, "en") == "AUM change, 3 months: +12%"
    assert aum_change.reason(-0.0001, "zh") == "近3个月资产下降0%"
    maturing = features["maturing_30d"]
    assert maturing.reason(120_000, "zh") == "¥12万将在30天内到期，需挽留续作"
    assert maturing.reason(120_000, "en") == "CNY 120,000 matures within 30 days: ask to renew"
    assert features["open_complaints"].reason(1, "en") == "1 complaint still unresolved"
    assert features["open_complaints"].reason(2, "en") == "2 complaints still unresolved"
    assert features["days_since_rm_contact"].reason(45.6, "zh") == "客户经理已46天未联系"
    assert features["outflow_to_other_banks_share_3m"].reason(0.62, "zh").startswith("近3个月62%")
    assert features["aum_avg_1m"].reason(float("nan"), "en") == "AUM this month: no data"


@pytest.mark.parametrize(
    ("amount", "zh", "en"),
    [
        (0, "¥0", "CNY 0"),
        (8_500, "¥8,500", "CNY 8,500"),
        (9_999.6, "¥1万", "CNY 10,000"),
        (12_000, "¥1.2万", "CNY 12,000"),
        (1_234_567, "¥123.5万", "CNY 1,234,567"),
        (99_999_999, "¥1亿", "CNY 99,999,999"),
        (123_456_789, "¥1.23亿", "CNY 123,456,789"),
        (-12_000, "-¥1.2万", "CNY -12,000"),
        (-0.4, "¥0", "CNY 0"),
    ],
)
def test_money(amount: float, zh: str, en: str) -> None:
    balance = catalog(PRODUCTS)["balance_demand_deposit"]
    assert balance.reason(amount, "zh") == f"活期存款余额{zh}"
    assert balance.reason(amount, "en") == f"Demand deposit balance {en}"


def test_bool_features_pick_the_text_for_the_value() -> None:
    features = catalog()
    lost = features["salary_credit_lost"]
    assert lost.reason(True, "zh") != lost.reason(False, "zh")
    assert lost.reason(np.True_, "en") == lost.reason(1.0, "en") == lost.reason(True, "en")
    assert features["rm_assigned"].reason(False, "en") == "No assigned RM"
    assert features["rm_assigned"].reason(False, "zh") == "未分配客户经理"


def test_names_unique_and_in_stable_order() -> None:
    names = feature_names()
    assert len(names) == len(set(names))
    assert names == list(catalog()) == feature_names()
    assert all(name == feature.name for name, feature in catalog().items())


def test_balance_per_product() -> None:
    names = feature_names(PRODUCTS)
    for product in PRODUCTS:
        assert f"balance_{product.product}" in names
    assert len([n for n in names if n.startswith("balance_")]) == len(PRODUCTS)
    assert not [n for n in feature_names() if n.startswith("balance_")]
    custom = feature_names(("current_account", "gold_account"))
    assert [n for n in custom if n.startswith("balance_")] == [
        "balance_current_account",
        "balance_gold_account",
    ]
    gold = catalog(("gold_account",))["balance_gold_account"]
    assert gold.label_zh == "gold_account余额"
    assert gold.reason(20_000, "en") == "gold_account balance CNY 20,000"


def test_repeated_products_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated"):
        catalog(("home_loan", "home_loan"))


def test_product_names_come_from_the_catalogue() -> None:
    gold = Product(product="gold_account", kind="asset", names=Names(zh="积存金", en="Gold"))
    entry = catalog((gold,))["balance_gold_account"]
    assert (entry.label_zh, entry.label_en) == ("积存金余额", "Gold balance")
    config = BankConfig(product_labels={"gold_account": Names(en="Gold savings")})
    named = config.with_products((gold,))
    assert named.product_label("gold_account", "en") == "Gold savings"
    assert named.product_label("gold_account", "zh") == "积存金"
    assert named.product_label("unknown_product", "zh") == "unknown_product"


def test_every_truth_driver_has_a_feature() -> None:
    used = {feature.driver for feature in FEATURES}
    assert used <= {*DRIVERS, None}
    assert used - {None} == set(DRIVERS), "every truth driver needs a feature that shows it"


def test_one_reason_group_one_driver() -> None:
    drivers_by_group: dict[str, set[str | None]] = {}
    for feature in FEATURES:
        drivers_by_group.setdefault(feature.reason_group, set()).add(feature.driver)
    assert all(len(drivers) == 1 for drivers in drivers_by_group.values()), drivers_by_group


def test_reason_groups() -> None:
    groups = {name: feature.reason_group for name, feature in catalog(PRODUCTS).items()}
    for name in ("aum_avg_1m", "aum_avg_3m", "aum_avg_12m", "aum_change_3m", "aum_slope_6m"):
        assert groups[name] == "assets_falling"
    assert groups["salary_credit_3m"] == groups["salary_credit_lost"] == "salary"
    assert {groups[n] for n in ("complaints_12m", "open_complaints", "days_to_resolve_avg")} == {
        "complaint"
    }
    assert {groups[n] for n in ("rm_contacts_3m", "days_since_rm_contact", "rm_assigned")} == {
        "rm_contact"
    }
    assert groups["maturing_30d"] == groups["maturing_share_30d"] == "maturity"
    assert groups["outflow_to_other_banks_share_3m"] == groups["txn_amount_out_3m"] == "outflow"
    assert groups["activity_change_3m"] == groups["days_since_last_txn"] == "activity"
    assert groups["tenure_months"] == "tenure_months"


def test_sensitive_features() -> None:
    sensitive = {feature.name for feature in FEATURES if feature.sensitive}
    assert {"age", "city_tier"} <= sensitive
    assert not any(catalog()[name].actionable for name in sensitive)


def test_every_domain_has_a_feature() -> None:
    assert {feature.domain for feature in FEATURES} == set(DOMAINS)


def test_directions_and_flags() -> None:
    features = catalog()
    assert features["aum_change_3m"].direction == -1
    assert features["aum_change_3m"].reason_value == "negate"
    assert features["open_complaints"].direction == 1
    assert features["open_complaints"].actionable
    assert features["days_since_rm_contact"].direction == 1
    assert features["products_held"].direction == -1
    assert features["salary_credit_lost"].direction == 1
    assert not features["age"].actionable
    assert features["salary_credit_lost"].dtype == features["rm_assigned"].dtype == "bool"


def test_entries_are_checked() -> None:
    good = dict(
        name="x",
        domain="loyalty",
        dtype="int64",
        label_zh="x",
        label_en="x",
        reason_zh="{value:.0f}",
        reason_en="{value:.0f}",
        direction=1,
        actionable=True,
    )
    assert Feature(**good).reason_group == "x"
    for change, message in [
        ({"domain": "wealth"}, "domain"),
        ({"dtype": "int32"}, "dtype"),
        ({"direction": 2}, "direction"),
        ({"driver": "bad_luck"}, "driver"),
        ({"reason_value": "square"}, "reason_value"),
        ({"reason_en": "AUM down"}, "placeholder"),
        ({"reason_zh": "{amount}"}, "placeholder"),
        ({"reason_en": "{value} and {value}"}, "placeholder"),
        ({"growth": Growth("x", "x", when="sideways")}, "growth when"),
        ({"growth": Growth("{amount}", "x")}, "growth text"),
        ({"cases": (Case(0, 0, "x", "{value} {value:.0f}"),)}, "case"),
    ]:
        with pytest.raises(ValueError, match=message):
            Feature(**{**good, **change})


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="language"):
        catalog()["age"].reason(40, "fr")


def test_version() -> None:
    assert CATALOG_VERSION == "2"


def test_every_feature_has_a_range_of_its_kind() -> None:
    features = catalog(PRODUCTS)
    assert all(f.minimum is not None for f in features.values())  # nothing unbounded below
    amounts = [n for n in features if n.startswith(("balance_", "aum_avg_", "txn_amount_"))]
    assert amounts and all(features[n].minimum == 0 for n in amounts)
    for name in ("contribution_share_outlet", "mobile_share_3m", "outflow_to_other_banks_share_3m"):
        assert (features[name].minimum, features[name].maximum) == (0, 1), name
    changes = [n for n in features if n.startswith("aum_change_")] + ["activity_change_3m"]
    assert all(features[n].minimum == -1 and features[n].maximum is None for n in changes)
    assert features["aum_slope_6m"].admits(-0.6) and not features["aum_slope_6m"].admits(-1.5)
    for flag in (f for f in features.values() if f.dtype == "bool"):
        assert (flag.minimum, flag.maximum) == (0, 1), flag.name
        assert flag.admits(True) and flag.admits(0) and not flag.admits(0.5)
    counts = [f for f in features.values() if f.dtype == "int64" and f.name != "city_tier"]
    assert all(f.minimum <= 0 for f in counts)
    assert features["products_held"].maximum == len(PRODUCTS)
    assert features["product_breadth_change_6m"].minimum == -len(PRODUCTS)


def test_out_of_range_values_are_refused_and_named_in_words() -> None:
    features = catalog(PRODUCTS)
    for name, bad in [
        ("aum_avg_3m", -5e12),
        ("tier_level", 99),
        ("tier_level", 2.5),
        ("mobile_share_3m", 1.2),
        ("txn_count_3m", -1),
        ("aum_change_3m", -1.01),
        ("age", 200),
    ]:
        assert not features[name].admits(bad), (name, bad)
    for name, good in [("aum_avg_3m", 0.0), ("tier_level", 5), ("tier_level", 3.0), ("age", 40)]:
        assert features[name].admits(good), (name, good)
    assert features["tier_level"].allowed() == "a whole number from 0 to 5"
    assert features["aum_avg_3m"].allowed() == "a number of at least 0"
    assert features["mobile_share_3m"].allowed() == "a number from 0 to 1"
    assert features["rm_assigned"].allowed() == "true or false (or 1 or 0)"


def test_the_tier_level_ranges_over_the_banks_own_ladder() -> None:
    three = TierLadder(
        tiers=(
            Tier(name="basic", min_aum=0),
            Tier(name="silver", min_aum=5e4),
            Tier(name="gold", min_aum=5e5),
        )
    )
    assert catalog(PRODUCTS, three)["tier_level"].maximum == 2
    assert catalog(PRODUCTS)["tier_level"].maximum == len(TierLadder().tiers) - 1 == 5
    assert catalog(PRODUCTS, BankConfig().tiers)["tier_level"].maximum == 5


def test_the_pyramid_range_matches_the_pyramids_scopes() -> None:
    from features.tiers import PYRAMID_SCOPES

    assert catalog()["pyramid_level"].maximum == len(PYRAMID_SCOPES)


def test_a_range_must_be_ordered() -> None:
    entry = dict(
        name="x", domain="loyalty", dtype="int64", label_zh="x", label_en="x",
        reason_zh="{value:.0f}", reason_en="{value:.0f}", direction=1, actionable=True,
    )  # fmt: skip
    with pytest.raises(ValueError, match="minimum 3 is above maximum 1"):
        Feature(**entry, minimum=3, maximum=1)


def test_reasons_an_rm_reads_without_arithmetic() -> None:
    features = catalog(PRODUCTS)
    money_in = features["txn_amount_in_3m"]
    assert money_in.reason(0, "en") == "No money paid in for 3 months"
    assert money_in.reason(0.3, "zh") == "近3个月没有资金流入"
    assert money_in.reason(12_000, "en") == "Only CNY 12,000 paid in over 3 months"
    other_banks = features["outflow_to_other_banks_to_aum_3m"]
    assert other_banks.reason(1.14, "en") == "Paid other banks more than their AUM in 3 months"
    assert other_banks.reason(1.14, "zh") == "近3个月转出他行的金额超过其全部资产"
    assert other_banks.reason(0.62, "en") == "Paid other banks over half their AUM in 3 months"
    assert other_banks.reason(0.2, "en") == "Paid other banks 20% of AUM in 3 months"
    assert features["rm_contacts_3m"].reason(0, "en") == "No RM contact in the last 3 months"
    assert features["txn_count_3m"].reason(0, "zh") == "近3个月没有交易"


def test_growth_reasons_say_why_an_offer_fits_never_a_level_or_a_risk() -> None:
    features = catalog(PRODUCTS)
    never = (
        "tier_level",
        "pyramid_level",
        "tier_downgrades_12m",
        "contribution_12m",
        "complaints_12m",
        "open_complaints",
        "outflow_to_other_banks_to_aum_3m",
        "days_since_rm_contact",
        "balance_mortgage",  # a loan's balance is no money to invest
        "age",
    )
    assert not [name for name in never if features[name].growth is not None]
    change = features["aum_change_3m"]
    assert change.growth_reason(0.12, "en") == "AUM up 12% over the last 3 months"
    assert change.growth_reason(-0.12, "en") is None  # a fall is no reason to buy
    salary = features["salary_credit_lost"]
    assert salary.growth_reason(False, "en") == "Salary paid in here every month"
    assert salary.growth_reason(True, "zh") is None
    assert features["maturing_30d"].growth_reason(50_000, "zh") == "¥5万将在30天内到期，可再配置"
    assert features["balance_demand_deposit"].growth_reason(236_000, "en") == (
        "CNY 236,000 in Demand deposit to put to work"
    )
    for feature in FEATURES:
        for value in [*NUMERIC_VALUES, True, False, None, float("nan")]:
            for lang in ("zh", "en"):
                text = feature.growth_reason(value, lang)
                if text is not None:
                    assert_clean(text, feature)
                    assert "-" not in text, (feature.name, value, text)
