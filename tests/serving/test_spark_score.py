"""`retain score --engine spark` gives what the DuckDB path gives: same customers, scores,
reasons and lists (the champion models scored inside Spark, shipped as native text)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from synthetic.bank import write_bank
from synthetic.config import SynthConfig
from tests.conftest import SCORED_CUTOFF, run_retain

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17"),
]


def score(engine: str, bank, out, env) -> tuple[pd.DataFrame, dict]:
    args = ["score", "--warehouse", str(bank), "--cutoff", SCORED_CUTOFF, "--out", str(out)]
    args += ["--lang", "en", "--engine", engine, "--json", str(out.with_suffix(".json"))]
    result = run_retain(args, env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    scores = pd.read_parquet(out / "scores.parquet")
    summary = json.loads(out.with_suffix(".json").read_text())
    return scores.sort_values("customer_id", ignore_index=True), summary


@pytest.fixture(scope="module")
def both(champions, tmp_path_factory):
    """A 2k bank from the champions' generator (seed and defaults: the same catalogue), scored
    by the champion models on DuckDB and on Spark local[2]."""
    _, _, env = champions
    root = tmp_path_factory.mktemp("spark_score")
    write_bank(SynthConfig(customers=2_000, seed=5), root / "bank")
    duck = score("duckdb", root / "bank", root / "duckdb", env)
    spark = score("spark", root / "bank", root / "spark", env)
    return root, duck, spark


def test_spark_scores_equal_duckdb_scores(both):
    _, (duck, _), (spark, _) = both
    assert len(duck) > 1_000
    assert duck["customer_id"].equals(spark["customer_id"])
    assert list(duck.columns) == list(spark.columns)
    probabilities = [c for c in duck.columns if c.startswith(("p_", "propensity_"))]
    assert {"p_churn", "p_upgrade"} <= set(probabilities)
    for column in probabilities:
        np.testing.assert_allclose(
            spark[column].to_numpy(float), duck[column].to_numpy(float), rtol=0, atol=1e-9
        )
    assert duck["risk_band"].equals(spark["risk_band"])


def test_spark_reasons_and_offers_equal_duckdb(both):
    _, (duck, d), (spark, s) = both
    numbers = [c for c in duck.columns if c.endswith(("_contribution", "_value"))]
    reasons = [c for c in duck.columns if "reason_" in c and c not in numbers]
    assert any(c.startswith("growth_reason_") for c in reasons)
    for column in [*reasons, "growth_offer", "list_group", "list_id", "list_rank"]:
        a, b = duck[column], spark[column]
        assert a.isna().equals(b.isna()), column
        assert a[a.notna()].astype(str).equals(b[b.notna()].astype(str)), column
    for column in numbers:  # the two engines may sum balances in another order: last digits
        np.testing.assert_allclose(spark[column], duck[column], rtol=1e-12, atol=1e-9)
    assert duck["reason_1_feature"].notna().sum() > 100  # explained customers, not none
    for key in ("customers_scored", "customers_explained", "lists", "listed_customers"):
        assert d[key] == s[key], key


def test_spark_lists_equal_duckdb_lists(both):
    root, _, _ = both
    for name in ("lists.parquet", "growth.parquet"):
        duck = pd.read_parquet(root / "duckdb" / name)
        spark = pd.read_parquet(root / "spark" / name)
        assert len(duck) > 0, name
        keys = ["list_id", "rank", "customer_id"]
        assert duck[keys].equals(spark[keys]), name
    assert sorted(p.name for p in (root / "spark" / "lists").iterdir()) == sorted(
        p.name for p in (root / "duckdb" / "lists").iterdir()
    )
