"""Shared fixtures: small synthetic banks generated once per test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from features.sources.synthetic import SynthConfig, write_bank

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def small_bank(tmp_path_factory) -> Path:
    """3,000 customers × 24 months: enough for pipelines, quick to make (~1 s)."""
    out = tmp_path_factory.mktemp("banks") / "small"
    write_bank(SynthConfig(customers=3_000, seed=7), out)
    return out


@pytest.fixture(scope="session")
def bank_20k(tmp_path_factory) -> Path:
    """20,000 customers × 24 months: the size the statistical acceptance checks use."""
    out = tmp_path_factory.mktemp("banks") / "bank20k"
    write_bank(SynthConfig(customers=20_000, seed=11), out)
    return out


@pytest.fixture(scope="session")
def features_20k(bank_20k, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("features") / "features.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "retain", "features", "--warehouse", str(bank_20k),
         "--cutoffs", "2024-01-31:2024-12-31", "--out", str(out),
         "--json", str(out.with_suffix(".json"))],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return pd.read_parquet(out)
