"""The model card: every section, the metrics table, the oracle only when known, no None/nan."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from training.card import ModelCardInfo, SplitSummary, default_limits, model_card

SECTIONS = [
    "## Purpose",
    "## Data",
    "## Definitions",
    "## Features",
    "## Training",
    "## Results",
    "## Limits and intended use",
    "## Provenance",
]
BASELINES = ("logistic regression", "rule of thumb")


@pytest.fixture
def info() -> ModelCardInfo:
    """A churn card as training.evaluate reports it, with the oracle of a synthetic bank."""
    return ModelCardInfo(
        model_name="retain-churn",
        task="churn",
        purpose="Rank customers by risk of leaving within three months.",
        splits=(
            SplitSummary("train", 120_000, tuple(f"2023-{m:02d}" for m in range(1, 13)), 0.052),
            SplitSummary("validation", 10_000, ("2024-01",), 0.049),
            SplitSummary("test", 9_800, ("2024-02",), 0.0512),
        ),
        data_fingerprint="9f2c44e1a0b3",
        label_definition="AUM over the horizon falls below 30% of its 3-month average.",
        features=("aum_change_3m", "months_since_last_login", "age"),
        catalog_version="1",
        params={"learning_rate": 0.05, "num_leaves": 15, "metric": "auc|binary_logloss"},
        calibration="isotonic, fitted on validation",
        test_metrics={
            "test_auc": 0.81234,
            "pr_auc": 0.4102,
            "ece": 0.0123,
            "lift_at_10": 3.41,
            "capture_at_10": 0.342,
            "oracle_auc": 0.83,
            "auc_to_oracle": 0.81234 / 0.83,
        },
        baseline_metrics={
            "logistic regression": {"test_auc": 0.7601, "lift_at_10": 2.5, "capture_at_10": 0.25},
            "rule of thumb": {"test_auc": 0.6502},
        },
        git_sha="0123abcd",
        run_id="5e6f7a8b",
        created="2024-05-01T10:00:00+00:00",
        sensitive_features=("age",),
    )


def without_oracle(info: ModelCardInfo) -> ModelCardInfo:
    metrics = {k: v for k, v in info.test_metrics.items() if "oracle" not in k}
    return replace(info, test_metrics=metrics, oracle_auc=None, auc_to_oracle=None)


def table_row(card: str, first_cell: str) -> list[str]:
    for line in card.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r} in the card")


def test_every_section_in_order(info: ModelCardInfo) -> None:
    card = model_card(info)
    positions = [card.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions)
    assert card.startswith("# Model card — retain-churn")


def test_metrics_table_compares_model_baselines_and_oracle(info: ModelCardInfo) -> None:
    card = model_card(info)
    header = table_row(card, "metric")
    assert header[1] == "**model**" and header[2:4] == list(BASELINES)
    assert "oracle (true probabilities)" in header
    assert [f"model − {name}" for name in BASELINES] == header[-2:]
    assert table_row(card, "ROC AUC") == [
        "ROC AUC",
        "**0.8123**",
        "0.7601",
        "0.6502",
        "0.8300",
        "+0.0522 above",
        "+0.1621 above",
    ]
    assert table_row(card, "positives captured in top 10%")[1:3] == ["**34.2%**", "25.0%"]
    assert table_row(card, "positives captured in top 10%")[-2:] == ["+9.2 pp above", "—"]
    assert table_row(card, "lift in top 10%")[1] == "**3.41×**"
    assert table_row(card, "ECE (calibration error) ↓")[1] == "**0.0123**"
    assert table_row(card, "PR AUC (average precision)")[1] == "**0.4102**"
    assert "**Oracle AUC**" in card and "97.9% of it" in card


def test_the_card_says_in_words_where_the_model_is_below_a_baseline(info: ModelCardInfo) -> None:
    """The churn model below LightGBM's defaults on PR AUC (0.337 vs 0.367) must be said, not
    left for the reader to find in a column of signed differences."""
    defaults = {"test_auc": 0.80, "pr_auc": 0.367, "lift_at_10": 3.41, "capture_at_10": 0.40}
    metrics = {**info.test_metrics, "pr_auc": 0.337, "ece": 0.01}
    card = model_card(
        replace(info, test_metrics=metrics, baseline_metrics={"lightgbm_defaults": defaults})
    )
    header = table_row(card, "metric")
    assert header[2] == "LightGBM defaults" and header[-1] == "model − LightGBM defaults"
    assert table_row(card, "PR AUC (average precision)")[-1] == "-0.0300 below"
    assert table_row(card, "ROC AUC")[-1] == "+0.0123 above"
    assert table_row(card, "lift in top 10%")[-1] == "equal"
    assert (
        "- Against LightGBM defaults: worse on PR AUC (0.3370 vs 0.3670), positives captured "
        "in top 10% (34.2% vs 40.0%); better on ROC AUC; equal on lift in top 10%." in card
    )
    # lower is better for ECE: below a baseline is better, and said so
    calibrated = replace(
        info,
        test_metrics={"test_auc": 0.8, "ece": 0.01},
        baseline_metrics={"logistic regression": {"test_auc": 0.8, "ece": 0.02}},
    )
    assert "- Against logistic regression: better on ECE; equal on ROC AUC." in model_card(
        calibrated
    )


def test_data_and_provenance(info: ModelCardInfo) -> None:
    card = model_card(info)
    assert table_row(card, "train")[1:] == ["2023-01 … 2023-12 (12 cutoffs)", "120,000", "5.20%"]
    assert table_row(card, "test")[1:] == ["2024-02", "9,800", "5.12%"]
    for value in ("9f2c44e1a0b3", "0123abcd", "5e6f7a8b", "2024-05-01T10:00:00+00:00"):
        assert value in card
    assert "`aum_change_3m`" in card and "isotonic, fitted on validation" in card
    assert table_row(card, "`metric`")[1] == "auc\\|binary_logloss", "pipes must be escaped"


def test_every_table_line_has_as_many_cells_as_its_header(info: ModelCardInfo) -> None:
    widths = []
    for block in model_card(info).split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            counts = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
            widths.append(counts)
    assert len(widths) == 4  # data, training, results, provenance
    assert all(len(counts) == 1 for counts in widths), widths


def test_no_oracle_when_it_is_not_known(info: ModelCardInfo) -> None:
    card = model_card(without_oracle(info))
    assert "oracle" not in card.lower()
    assert len(table_row(card, "ROC AUC")) == 6


def test_oracle_ratio_is_computed_when_only_the_oracle_is_given(info: ModelCardInfo) -> None:
    card = model_card(replace(without_oracle(info), oracle_auc=0.9))
    assert "0.9000; the model reaches 90.3% of it" in card


def test_absent_optional_fields_leave_no_none_or_nan(info: ModelCardInfo) -> None:
    bare = without_oracle(info)
    bare = replace(
        bare,
        test_metrics={**bare.test_metrics, "value_captured_at_10": float("nan")},
        params={**bare.params, "max_bin": None, "min_gain": float("nan")},
        splits=(*bare.splits, SplitSummary("holdout", 0, (), float("nan"))),
        sensitive_features=(),
    )
    card = model_card(bare)
    assert "None" not in card
    assert not re.search(r"\bnan\b", card, re.IGNORECASE)
    assert table_row(card, "value at risk captured in top 10%")[1] == "**n/a**"
    assert "Sensitive inputs" not in card


def test_limits_default_to_the_task_and_can_be_replaced(info: ModelCardInfo) -> None:
    card = model_card(info)
    for limit in default_limits("churn"):
        assert f"- {limit}" in card
    custom = model_card(replace(info, limits=("Pilot in two branches only.",)))
    assert "- Pilot in two branches only." in custom
    assert default_limits("churn")[0] not in custom


@pytest.mark.parametrize("task", ["churn", "upgrade", "flat", "cross_sell_fund"])
def test_default_limits_cover_the_essentials(task: str) -> None:
    text = " ".join(default_limits(task)).lower()
    for caveat in ("synthetic", "not for credit", "never shown as reasons", "drift"):
        assert caveat in text, f"{task}: no {caveat!r} caveat"
    assert ("out of time" in text) != (task == "flat") or "no out-of-time" in text
    assert "synthetic" not in " ".join(default_limits(task, synthetic=False)).lower()


def test_cross_sell_limits_name_the_product() -> None:
    assert any("opening fund" in limit for limit in default_limits("cross_sell_fund"))


def test_unknown_task_is_refused(info: ModelCardInfo) -> None:
    with pytest.raises(ValueError, match="cross_sell_<product>"):
        default_limits("attrition")
    with pytest.raises(ValueError, match="unknown task 'cross_sell_'"):
        replace(info, task="cross_sell_")
