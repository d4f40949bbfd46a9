"""A small bank with every model trained and promoted in a private MLflow store, scored once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from features.build import parse_cutoffs
from features.config import BankConfig
from features.materialize import write_features
from features.sources.synthetic import SynthConfig, write_bank
from training.promote import promote
from training.register import registered_models, use_store
from training.run import train_task
from training.train import TrainConfig

SCORED_CUTOFF = "2024-09-30"  # the truth of the next 3 months is known: fidelity can be measured


@dataclass(frozen=True)
class Scored:
    bank: Path
    store: Path
    env: dict
    out: Path
    summary: dict


def run_retain(args: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retain", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip


@pytest.fixture(scope="session")
def champions(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(bank, store folder, environment) with every model of the bank promoted to champion."""
    root = tmp_path_factory.mktemp("scoring")
    bank, store = root / "bank", root / "mlruns"
    write_bank(SynthConfig(customers=6_000, seed=5), bank)
    features = root / "features.parquet"
    write_features(bank, parse_cutoffs("2023-10-31:2024-12-31"), features, BankConfig())
    uri = f"sqlite:///{store / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    use_store(store)
    train_task(features, "all", TrainConfig(), warn=lambda _: None)
    for name in sorted({m["name"] for m in registered_models()}):
        promote(name)
    patch.undo()
    return bank, store, {**os.environ, "MLFLOW_TRACKING_URI": uri}


@pytest.fixture(scope="session")
def scored(champions, tmp_path_factory) -> Scored:
    bank, store, env = champions
    out = tmp_path_factory.mktemp("scored") / "scores"
    summary_path = out.parent / "summary.json"
    result = run_retain(
        [
            "score",
            "--warehouse",
            str(bank),
            "--cutoff",
            SCORED_CUTOFF,
            "--out",
            str(out),
            "--lang",
            "en",
            "--json",
            str(summary_path),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return Scored(bank, store, env, out, json.loads(summary_path.read_text()))
