"""The feature table on a synthetic bank: catalog coverage, labels against the truth, the CLI."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from features.activity import activity_features
from features.build import CUTOFF_FEATURES, ID_COLUMNS, parse_cutoffs
from features.catalog import catalog, feature_names
from features.config import BankConfig
from features.contribution import aum_drop_features, contribution_features
from features.lifecycle import lifecycle_features
from features.loyalty import loyalty_features
from features.satisfaction import satisfaction_features
from features.tiers import tier_history_features
from synthetic.config import DEFAULT_CATALOGUE, as_products
from tests import retain_process

CONFIG = BankConfig().with_products(as_products(DEFAULT_CATALOGUE))


def test_every_produced_feature_has_a_catalog_entry_and_vice_versa(small_bank):
    from features.engine import connect, load_warehouse
    from features.panel import build_panel

    panel = build_panel(load_warehouse(connect(), small_bank), CONFIG)
    produced = {
        *contribution_features(panel, CONFIG),
        *aum_drop_features(panel.mutate(aum_dropped=False)),
        *loyalty_features(panel),
        *activity_features(panel),
        *satisfaction_features(panel),
        *lifecycle_features(panel),
        *tier_history_features(panel.mutate(tier_level=0, tier_changed=0, tier_dropped=0)),
        "tier_level",
        "months_in_tier",
        *CUTOFF_FEATURES,
    }
    produced.discard("tier_run")  # a step towards months_in_tier, not a feature
    assert produced == set(feature_names(CONFIG.products))


def test_feature_file_has_ids_catalog_features_labels_and_truth(features_20k):
    names = feature_names(CONFIG.products)
    assert list(features_20k.columns[: len(ID_COLUMNS)]) == list(ID_COLUMNS)
    assert all(name in features_20k for name in names)
    labels = [c for c in features_20k if c.startswith("label_")]
    assert "label_churn" in labels and "label_upgrade" in labels
    assert len([c for c in labels if c.startswith("label_cross_sell_")]) == len(CONFIG.products)
    assert "truth_p_churn_3m" in features_20k
    assert not features_20k.duplicated(["customer_id", "cutoff"]).any()
    assert features_20k["cutoff"].nunique() == 21


def test_catalog_dtypes_match_the_file(features_20k):
    for name, feature in catalog(CONFIG.products).items():
        column = features_20k[name]
        if feature.dtype == "bool":
            assert pd.api.types.is_bool_dtype(column), name
        else:
            assert pd.api.types.is_numeric_dtype(column), name


def test_every_value_lies_in_its_catalog_range(features_20k):
    """The catalog's ranges (which the API enforces) hold on every row of every month."""
    outside = {}
    for name, feature in catalog(CONFIG.products, CONFIG.tiers).items():
        values = features_20k[name].dropna().astype(float)
        refused = values[~values.map(feature.admits)]
        if len(refused):
            outside[name] = (len(refused), feature.allowed(), refused.head(3).tolist())
    assert not outside, outside
    assert len(features_20k) > 100_000


def test_labels_are_null_where_the_horizon_is_not_complete(features_20k):
    # the data ends 2024-12-31: cutoffs after 2024-09-30 have an incomplete 3-month horizon
    late = features_20k[features_20k["cutoff"] > date(2024, 9, 30)]
    assert late["cutoff"].nunique() == 3
    assert late.filter(like="label_").isna().all().all()
    complete = features_20k[features_20k["cutoff"] == date(2024, 9, 30)]
    assert complete["label_churn"].notna().sum() > 1000
    assert complete.loc[~complete["eligible_churn"], "label_churn"].isna().all()


def test_churn_labels_agree_with_the_true_probability_at_every_cutoff(features_20k):
    eligible = features_20k[features_20k["label_churn"].notna()]
    by_cutoff = eligible.groupby("cutoff").agg(
        label=("label_churn", "mean"),
        truth=("truth_p_churn_3m", "mean"),
        rows=("label_churn", "size"),
    )
    assert len(by_cutoff) == 18
    relative = (by_cutoff["label"] - by_cutoff["truth"]).abs() / by_cutoff["truth"]
    # ~350 churners per cutoff: the realised rate has a relative standard error of about 5%,
    # and neighbouring cutoffs share exits, so one lucky quarter can push three cutoffs past
    # 15% by sampling alone (this bank: 17.5% at 2024-09-30, 3.3 standard errors). Allow
    # 4 standard errors where that is wider than 15%; the row-by-row test below is exact.
    standard_error = (by_cutoff["truth"] * (1 - by_cutoff["truth"]) / by_cutoff["rows"]) ** 0.5
    allowed = (4 * standard_error / by_cutoff["truth"]).clip(lower=0.15)
    assert (relative <= allowed).all(), by_cutoff.assign(relative=relative, allowed=allowed)
    pooled = eligible["label_churn"].mean() / eligible["truth_p_churn_3m"].mean() - 1
    assert abs(pooled) <= 0.05


def test_every_churn_label_is_an_exit_the_generator_made_and_vice_versa(features_20k):
    eligible = features_20k[features_20k["label_churn"].notna()]
    exited = eligible["truth_churn_driver"].notna()  # set when the exit falls in the horizon
    labelled = eligible["label_churn"] == 1
    assert exited.sum() > 2_000
    # the rule and the generator disagree only at the edges: three months of a driver's
    # outflow plus noise can look like an exit, and an exit right after a windfall can leave
    # more than 30% of the old average behind
    assert (labelled != exited).sum() <= 0.001 * len(eligible)


def test_cutoff_ranges_parse_to_month_ends():
    assert parse_cutoffs("2024-01-31:2024-06-30", every=2) == [
        date(2024, 1, 31),
        date(2024, 3, 31),
        date(2024, 5, 31),
    ]
    with pytest.raises(ValueError, match="month-end"):
        parse_cutoffs("2024-01-15:2024-06-30")


def test_features_cli_refuses_cutoffs_outside_the_data(small_bank, tmp_path):
    result = retain_process.run(
        [
            "features",
            "--warehouse",
            str(small_bank),
            "--cutoffs",
            "2030-01-31:2030-03-31",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
        timeout=300,
    )
    assert result.returncode == 2
    assert "outside the warehouse" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "f.parquet").exists()


def test_features_json_summary(features_20k, tmp_path_factory):
    assert len(features_20k) > 50_000
    # the fixture's own summary (model artifacts elsewhere in the run carry a features.json too)
    summary_files = list(tmp_path_factory.getbasetemp().glob("features[0-9]*/features.json"))
    assert len(summary_files) == 1, summary_files
    summary = json.loads(summary_files[0].read_text())
    assert summary["rows"] == len(features_20k)
    assert summary["features"] == len(feature_names(CONFIG.products))


@pytest.mark.parametrize("spec", ["2024-06-30:2024-09-30", "2024-09-30"])
def test_building_in_customer_batches_gives_the_same_table(small_bank, tmp_path, spec, monkeypatch):
    """One batch or five, the file equals the one-query build of the same expressions (what
    PostgreSQL runs), in the file's order: by cutoff, then customer. The panel is compiled
    once for all five batches (views show each batch's customers)."""
    from pathlib import Path

    import features.duckdb_batches as batches
    from features.build import build_features, select_output
    from features.engine import open_warehouse
    from features.materialize import write_features
    from features.panel import build_panel
    from features.products import resolve_products

    cutoffs = parse_cutoffs(spec)
    whole, batched = tmp_path / "whole.parquet", tmp_path / "batched.parquet"
    write_features(Path(small_bank), cutoffs, whole, CONFIG, batch_customers=10**9)
    panels = []
    monkeypatch.setattr(
        batches, "build_panel", lambda *a, **k: panels.append(1) or build_panel(*a, **k)
    )
    write_features(Path(small_bank), cutoffs, batched, CONFIG, batch_customers=700)  # 5 batches
    assert len(panels) == 1
    _, wh = open_warehouse(small_bank)
    config = resolve_products(wh.products, CONFIG)  # as the build orders the products
    expected = select_output(build_features(wh, cutoffs, config), feature_names(config.products))
    expected = expected.to_pyarrow().to_pandas()  # dates as dates, as parquet gives them
    for built in (pd.read_parquet(whole), pd.read_parquet(batched)):
        assert list(built.columns) == list(expected.columns)
        pd.testing.assert_frame_equal(
            built, expected, check_exact=False, rtol=1e-9, check_dtype=False
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batched.parquet", "whole.parquet"]
