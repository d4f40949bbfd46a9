"""Reasons from TreeSHAP: exact against shap, grouped, risk-raising only, never sensitive."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap

from features.catalog import catalog, feature_names
from models.tree_shap import shap_tables
from serving.explain import ReasonGroups, contributions, explain, reason_columns, top_reasons

FEATURES = feature_names()


@pytest.fixture(scope="module")
def model() -> tuple[lgb.Booster, pd.DataFrame]:
    """A booster over every catalog feature where age, AUM change and complaints drive y."""
    rng = np.random.default_rng(0)
    n = 4_000
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    frame["open_complaints"] = rng.poisson(0.3, n)
    frame["salary_credit_lost"] = rng.random(n) < 0.1
    logit = (
        -2 * frame["aum_change_3m"]
        + 1.5 * frame["open_complaints"]
        + 1.2 * frame["age"]
        + 1.0 * frame["salary_credit_lost"]
        - 1.0
    )
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "max_depth": 6,
        "verbosity": -1,
        "seed": 0,
        "deterministic": True,
        "num_threads": 2,
    }
    booster = lgb.train(params, lgb.Dataset(frame.astype("float64"), label=y), 80)
    return booster, frame


def test_pred_contrib_equals_shap_tree_explainer(model):
    booster, frame = model
    sample = frame.sample(300, random_state=1)
    ours = contributions(booster, sample, FEATURES)
    theirs = shap.TreeExplainer(booster).shap_values(sample.astype("float64"))
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    assert np.abs(ours - theirs).max() < 1e-6


def test_contributions_add_up_to_the_raw_score(model):
    booster, frame = model
    full = booster.predict(frame.astype("float64").head(50), pred_contrib=True)
    raw = booster.predict(frame.astype("float64").head(50), raw_score=True)
    assert np.allclose(full.sum(axis=1), raw, atol=1e-9)


def test_a_sensitive_feature_is_never_a_reason_even_when_it_drives_the_score(model):
    booster, frame = model
    reasons = explain(booster, frame, FEATURES)
    shown = {name for rank in range(3) for name in reasons.feature_names(rank) if name}
    assert "aum_change_3m" in shown and "open_complaints" in shown
    sensitive = {f.name for f in catalog().values() if f.sensitive}
    assert sensitive and not shown & sensitive
    # age matters to the model: it is the top contributor for many rows, yet never shown
    contrib = contributions(booster, frame, FEATURES)
    assert (contrib.argmax(axis=1) == FEATURES.index("age")).mean() > 0.1


def test_reasons_only_push_risk_up_and_come_in_order(model):
    booster, frame = model
    reasons = explain(booster, frame, FEATURES)
    c = reasons.contribution
    assert np.all((c > 0) | np.isnan(c))
    filled = np.nan_to_num(c, nan=-np.inf)
    assert np.all(filled[:, :-1] >= filled[:, 1:])


def test_a_row_where_everything_lowers_risk_gets_no_reason():
    groups = ReasonGroups.for_features(FEATURES)
    contrib = -np.abs(np.random.default_rng(2).normal(size=(2, len(FEATURES))))
    complaint = [f for f in FEATURES if catalog()[f].reason_group == "complaint"]
    for name in complaint:
        contrib[0, FEATURES.index(name)] = 0.0
    contrib[0, FEATURES.index("open_complaints")] = 0.4
    reasons = top_reasons(contrib, np.ones_like(contrib), groups)
    assert [reasons.feature_names(r) for r in range(3)] == [
        ["open_complaints", None],
        [None, None],
        [None, None],
    ]


def test_related_features_make_one_reason():
    groups = ReasonGroups.for_features(FEATURES)
    contrib = np.zeros((1, len(FEATURES)))
    for name, value in [
        ("aum_avg_1m", 0.2),
        ("aum_avg_3m", 0.2),
        ("aum_change_3m", 0.5),
        ("aum_slope_6m", 0.1),
        ("open_complaints", 0.6),
    ]:
        contrib[0, FEATURES.index(name)] = value
    values = np.zeros((1, len(FEATURES)))
    values[0, FEATURES.index("aum_change_3m")] = -0.35
    reasons = top_reasons(contrib, values, groups, k=3)
    names = [reasons.feature_names(r)[0] for r in range(3)]
    # the four AUM features sum to 1.0 > 0.6: one "assets falling" reason, spoken by the
    # strongest member, then the complaint; nothing third
    assert names == ["aum_change_3m", "open_complaints", None]
    assert reasons.contribution[0, 0] == pytest.approx(1.0)
    assert reasons.texts(0, "en")[0] == "AUM down 35% over the last 3 months"
    assert reasons.texts(0, "zh")[0] == "近3个月资产下降35%"
    assert reasons.drivers() == [{"balance_decline", "complaint"}]


def test_reasons_can_be_limited_to_some_rows(model):
    booster, frame = model
    p = booster.predict(frame.astype("float64"))
    rows = np.flatnonzero(p >= 0.7)
    reasons = explain(booster, frame, FEATURES, rows=rows)
    assert 0 < len(rows) < len(frame) and reasons.feature.shape == (len(rows), 3)
    columns = reason_columns(reasons, len(frame))
    explained = pd.Series(columns["reason_1_feature"]).notna()
    assert set(np.flatnonzero(explained)) <= set(rows)
    assert pd.Series(columns["reason_1_text_zh"])[explained].str.len().gt(0).all()


def test_every_reason_feature_renders_in_both_languages_without_placeholders():
    rng = np.random.default_rng(3)
    for entry in catalog().values():
        if entry.sensitive:
            continue
        samples = (
            [True, False]
            if entry.dtype == "bool"
            else [0, 1, -0.35, 2.5, 12345.6, float(rng.normal() * 1e6), np.nan]
        )
        for value in samples:
            for lang in ("zh", "en"):
                text = entry.reason(value, lang)
                assert text and "{" not in text and "}" not in text, (entry.name, value, text)
                assert "nan" not in text.lower().split(), (entry.name, value, text)


def test_a_growth_offer_is_explained_by_what_makes_it_fit_never_a_level_or_a_risk():
    groups = ReasonGroups.for_features(FEATURES)
    contrib = np.zeros((1, len(FEATURES)))
    values = np.zeros((1, len(FEATURES)))
    for name, push, value in [
        ("tier_level", 0.9, 1),  # a bare tier: never a growth reason
        ("tier_downgrades_12m", 0.8, 1),  # a risk fact
        ("aum_change_3m", 0.7, -0.2),  # money leaving is no reason to buy
        ("aum_avg_1m", 0.1, 970_904),  # one of the assets group: speaks for it instead
        ("rm_contacts_3m", 0.5, 3),
        ("maturing_30d", 0.4, 50_000),
    ]:
        contrib[0, FEATURES.index(name)] = push
        values[0, FEATURES.index(name)] = value
    reasons = top_reasons(contrib, values, groups, k=3, growth=True)
    assert [reasons.feature_names(r)[0] for r in range(3)] == [
        "aum_avg_1m",  # the assets group (0.8 in all), through its member that fits
        "rm_contacts_3m",
        "maturing_30d",
    ]
    assert [reasons.texts(r, "en")[0] for r in range(3)] == [
        "Has CNY 970,904 in assets to invest",
        "In touch with the RM 3 times in the last 3 months",
        "CNY 50,000 matures within 30 days: money to place",
    ]
    churn = top_reasons(contrib, values, groups, k=3, actionable=True)  # the same, as risks
    assert {churn.texts(r, "en")[0] for r in range(2)} == {
        "AUM down 20% over the last 3 months",
        "Tier dropped 1 time in 12 months",
    }


@pytest.fixture(scope="module")
def shallow(model) -> lgb.Booster:
    """The same problem with retain's trees (training.train: 7 leaves, depth 3), which
    ``models.tree_shap`` explains from tables."""
    _, frame = model
    booster, _ = model
    y = booster.predict(frame.astype("float64")) > 0.5
    params = {"objective": "binary", "num_leaves": 7, "max_depth": 3, "verbosity": -1}
    return lgb.train({**params, "num_threads": 1}, lgb.Dataset(frame.astype("float64"), y), 120)


def test_reasons_from_the_tables_are_lightgbms_treeshap_reasons(model, shallow, monkeypatch):
    _, frame = model
    assert shap_tables(shallow) is not None
    theirs = shap.TreeExplainer(shallow).shap_values(frame.head(300).astype("float64"))
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    assert np.abs(contributions(shallow, frame.head(300), FEATURES) - theirs).max() < 1e-6
    ours = explain(shallow, frame, FEATURES, actionable=True)
    monkeypatch.setattr(
        "serving.explain.tree_shap",
        lambda booster, x: np.asarray(booster.predict(x, pred_contrib=True))[:, :-1],
    )
    lightgbms = explain(shallow, frame, FEATURES, actionable=True)
    for name in ("rows", "feature", "group", "context"):
        assert np.array_equal(getattr(ours, name), getattr(lightgbms, name)), name
    assert np.allclose(ours.contribution, lightgbms.contribution, rtol=1e-12, equal_nan=True)
    assert np.array_equal(ours.value, lightgbms.value, equal_nan=True)


def test_driver_evidence_reads_the_reasons_as_their_drivers_do():
    """serving.score.driver_evidence (Reasons.evidence, arrays) against Reasons.drivers (sets),
    row by row."""
    from serving.explain import Reasons
    from serving.score import driver_evidence

    rng = np.random.default_rng(4)
    groups = ReasonGroups.for_features(FEATURES)
    n, explained = 2_000, 1_500
    rows = np.sort(rng.choice(n, explained, replace=False))
    group = rng.integers(-1, len(groups.names), size=(explained, 3))
    reasons = Reasons(
        rows=rows,
        feature=np.where(group >= 0, 0, -1),
        group=group,
        value=np.zeros((explained, 3)),
        contribution=np.zeros((explained, 3)),
        groups=groups,
        context=rng.random((explained, 3)) < 0.3,
    )
    drivers = sorted({d for d in groups.drivers if d})
    truth = rng.choice([*drivers, "none", None], size=n).astype(object)
    frame = pd.DataFrame({"truth_churn_driver": truth})
    found = driver_evidence(frame, reasons)
    expected = np.zeros(n, dtype=np.int8)
    for row, shown in zip(rows, reasons.drivers(), strict=True):
        expected[row] = truth[row] in shown
    expected[pd.isna(truth) | (truth == "none")] = -1
    assert len(drivers) > 2 and (found == 1).sum() > 100
    assert np.array_equal(found, expected)
