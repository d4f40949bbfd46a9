"""The same feature code on Spark (local mode) gives the same rows and values as on DuckDB."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from synthetic.bank import write_bank
from synthetic.config import SynthConfig
from tests import retain_process

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17")


def build(engine: str, warehouse, out) -> pd.DataFrame:
    result = retain_process.run(
        [
            "features",
            "--warehouse",
            str(warehouse),
            "--cutoffs",
            "2024-01-31:2024-12-31",
            "--engine",
            engine,
            "--out",
            str(out),
        ],
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return pd.read_parquet(out).sort_values(["cutoff", "customer_id"], ignore_index=True)


def test_spark_and_duckdb_agree_on_a_2k_customer_bank(tmp_path):
    warehouse = tmp_path / "bank"
    write_bank(SynthConfig(customers=2_000, seed=5), warehouse)
    duck = build("duckdb", warehouse, tmp_path / "duck.parquet")
    spark = build("spark", warehouse, tmp_path / "spark.parquet")
    assert list(duck.columns) == list(spark.columns)
    assert len(duck) == len(spark) > 10_000
    assert duck[["customer_id", "cutoff"]].equals(spark[["customer_id", "cutoff"]])
    for column in duck.columns:
        a, b = duck[column], spark[column]
        assert a.isna().equals(b.isna()), column
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(
                a.astype(float),
                b.astype(float),
                rtol=1e-9,
                atol=1e-9,
                equal_nan=True,
                err_msg=column,
            )
        else:
            assert a[a.notna()].astype(str).equals(b[b.notna()].astype(str)), column
