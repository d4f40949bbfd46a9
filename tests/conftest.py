"""Shared fixtures: small synthetic banks generated once per test session."""

from __future__ import annotations

from pathlib import Path

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
