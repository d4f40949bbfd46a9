"""Promotion from the registry alone: models and the test rows they are compared on come from
MLflow, never from a local file; rollback puts any verified version back. Tiny boosters on a
random frame, no feature pipeline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.artifact import ModelArtifact, load_verified
from models.calibration import Calibrator
from models.registry import CHAMPION, EVALUATION_ROWS, use_store
from tests import retain_process
from training.calibrate import fit_calibrator
from training.promote import REPORTED, evaluation_rows, promote, rollback
from training.register import register_model

FEATURES = ["aum_change_3m", "tenure_months", "has_salary", "complaints_12m"]
CUTOFFS = ["2024-06-30", "2024-07-31", "2024-08-31"]  # train, valid, test


def bank_rows(n_per_cutoff: int = 1_500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_per_cutoff * len(CUTOFFS)
    frame = pd.DataFrame(
        {
            "customer_id": np.tile(np.arange(n_per_cutoff), len(CUTOFFS)),
            "cutoff": np.repeat(pd.to_datetime(CUTOFFS).date, n_per_cutoff),
            "aum_change_3m": rng.normal(size=n),
            "tenure_months": rng.integers(1, 200, size=n).astype("float64"),
            "has_salary": rng.random(n) < 0.6,
            "complaints_12m": rng.poisson(0.3, size=n).astype("float64"),
            "not_a_feature": rng.normal(size=n),
        }
    )
    risk = -1.5 * frame["aum_change_3m"] + frame["complaints_12m"] - frame["has_salary"]
    frame["label_churn"] = (risk + rng.normal(size=n) > 1.0).astype(int)
    return frame


def train(frame: pd.DataFrame, rounds: int = 40, leaves: int = 8, calibrated: bool = True):
    part = {c: frame[frame["cutoff"].astype(str) == c] for c in CUTOFFS}
    x = {c: p[FEATURES].astype("float64") for c, p in part.items()}
    train_, valid, _ = CUTOFFS
    booster = lgb.train(
        {"objective": "binary", "num_leaves": leaves, "verbose": -1, "seed": 1},
        lgb.Dataset(x[train_], part[train_]["label_churn"]),
        rounds,
    )
    y_valid = part[valid]["label_churn"].to_numpy()
    calibrator = (
        fit_calibrator(booster.predict(x[valid]), y_valid)[0]
        if calibrated
        else Calibrator("platt", {"a": 1.0, "b": 2.0})
    )
    metadata = {"label": "label_churn", "test_cutoff": CUTOFFS[-1]}
    return ModelArtifact(booster, calibrator, FEATURES, metadata), part[CUTOFFS[-1]]


def register(frame: pd.DataFrame, cap: int = 200_000, **kwargs) -> str:
    artifact, test_rows = train(frame, **kwargs)
    with mlflow.start_run(run_name="churn"):
        mlflow.set_tags({"model": "churn", "label": "label_churn"})
        mlflow.log_params(
            {"train_cutoffs": CUTOFFS[0], "valid_cutoff": CUTOFFS[1], "test_cutoff": CUTOFFS[2]}
        )
        mlflow.log_metrics({"test_auc": 0.8, "ece": 0.01})
        return register_model(artifact, "churn", test_rows, test_rows=test_rows, cap=cap).version


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    use_store(tmp_path)
    return uri


def test_the_gate_says_how_the_challenger_compares_on_every_reported_metric(store):
    frame = bank_rows()
    register(frame)
    promote("churn")
    register(frame, rounds=1, leaves=2)
    decision = promote("churn")
    mine, theirs = decision["comparison"]["challenger"], decision["comparison"]["champion"]
    assert set(mine) == set(theirs) == {"version", *REPORTED} - {"value_captured_at_10"}
    assert set(decision["verdicts"]) == set(mine) - {"version"}
    assert decision["verdicts"]["auc"] == "worse"
    words = decision["in_words"]
    assert words.startswith(f"challenger v{mine['version']} against champion v{theirs['version']}")
    assert f"ROC AUC ({mine['auc']:.4f} vs {theirs['auc']:.4f})" in words
    assert "PR AUC" in words


def test_promotion_needs_only_the_registry(store, tmp_path):
    features = tmp_path / "features.parquet"
    bank_rows().to_parquet(features)
    first = register(pd.read_parquet(features))
    assert promote("churn")["reason"] == "no champion yet"
    weak = register(pd.read_parquet(features), rounds=1, leaves=2)
    features.unlink()  # the feature file the models were trained on is gone
    decision = promote("churn")
    assert decision["promoted"] is False and decision["champion"] == first
    assert decision["comparison"]["challenger"]["auc"] < decision["comparison"]["champion"]["auc"]
    assert decision["rows"] == 1_500 and decision["test_cutoff"] == CUTOFFS[-1]
    forced = promote("churn", force=True)
    assert forced["promoted"] is True and "--force" in forced["reason"]
    assert load_verified("churn", CHAMPION).version == weak


def test_a_better_calibrated_challenger_gets_in(store):
    frame = bank_rows()
    register(frame, calibrated=False)
    promote("churn")
    better = register(frame)
    decision = promote("churn")
    assert decision["promoted"] is True, decision["reason"]
    assert decision["comparison"]["challenger"]["ece"] < decision["comparison"]["champion"]["ece"]
    assert load_verified("churn", CHAMPION).version == better


def test_the_logged_test_rows_are_capped_by_a_seeded_sample(store):
    version = register(bank_rows(), cap=500)
    rows = evaluation_rows(load_verified("churn", version=version))
    assert len(rows) == 500
    assert list(rows.columns[:3]) == ["customer_id", "cutoff", "label_churn"]
    assert set(FEATURES) <= set(rows.columns) and "not_a_feature" not in rows.columns
    run = MlflowClient().get_run(MlflowClient().get_model_version("churn", version).run_id)
    assert run.data.params["evaluation_rows_cap"] == "500"
    assert run.data.params["evaluation_rows_of"] == "1500"
    again = register(bank_rows(), cap=500)
    np.testing.assert_array_equal(  # seeded: the same rows every time
        evaluation_rows(load_verified("churn", version=again))["customer_id"], rows["customer_id"]
    )
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert artifacts == {EVALUATION_ROWS}


def test_rollback_sets_any_version_champion_and_records_who_and_when(store, monkeypatch):
    frame = bank_rows()
    first = register(frame)
    promote("churn")
    second = register(frame, rounds=60)
    promote("churn", force=True)
    monkeypatch.setenv("RETAIN_USER", "risk-officer")
    decision = rollback("churn", first)
    assert decision["champion"] == first and decision["previous"] == second
    assert load_verified("churn", CHAMPION).version == first
    tags = MlflowClient().get_model_version("churn", first).tags
    assert tags["champion_by"] == "risk-officer" and tags["champion_at"]
    change = json.loads(MlflowClient().get_registered_model("churn").tags["last_champion_change"])
    assert change == {**change, "version": first, "previous": second, "by": "risk-officer"}


def retain(args: list[str], store: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "RETAIN_USER": "cli-test"}
    root = Path(__file__).resolve().parents[2]
    return retain_process.run(args, env, cwd=root, timeout=300)


def test_the_commands_roll_back_and_list_runs(store):
    frame = bank_rows()
    first = register(frame)
    promote("churn")
    second = register(frame, rounds=60)
    promote("churn", force=True)
    result = retain(["promote", "--model", "churn", "--version", first, "--json", "-"], store)
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout[result.stdout.index("{") :])
    assert decision["champion"] == first and decision["previous"] == second
    assert decision["by"] == "cli-test"
    assert load_verified("churn", CHAMPION).version == first
    # what it did, in words, and both versions' figures on the newer one's test rows
    said = result.stderr  # with --json -, the table goes to stderr
    assert f"version {first} is champion, replacing version {second}" in said
    assert decision["rows_of"] == second and decision["rows"] == 1_500
    figures = decision["comparison"]
    assert set(figures) == {"champion", "replaced"}
    assert figures["champion"]["version"] == first and figures["replaced"]["version"] == second
    for metric in ("auc", "pr_auc", "ece", "brier", "lift_at_10"):
        assert 0 <= figures["champion"][metric] and 0 <= figures["replaced"][metric], metric
        assert f"{figures['champion'][metric]:.4f}" in said, metric
    assert "PR AUC" in said and decision["in_words"].startswith(f"champion v{first} against")
    assert set(decision["verdicts"].values()) <= {"better", "worse", "equal"}

    missing = retain(["promote", "--model", "churn", "--version", "99"], store)
    assert missing.returncode == 1 and "no model churn version 99" in missing.stderr
    assert "Traceback" not in missing.stderr
    unnamed = retain(["promote"], store)
    assert unnamed.returncode == 2 and "name one --model" in unnamed.stderr

    listed = retain(["runs", "--model", "churn", "--last", "1", "--json", "-"], store)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout[listed.stdout.index('{\n  "experiment"') :])["runs"]
    assert len(runs) == 1 and runs[0]["model"] == "churn" and runs[0]["status"] == "FINISHED"
    assert runs[0]["test_auc"] == 0.8 and runs[0]["test_cutoffs"] == CUTOFFS[-1]
    assert runs[0]["run_id"] == MlflowClient().get_model_version("churn", second).run_id
    table = retain(["runs"], store)
    assert table.returncode == 0 and "churn" in table.stdout and "0.8000" in table.stdout
    unknown = retain(["runs", "--experiment", "nope"], store)
    assert unknown.returncode == 1 and "no experiment 'nope'" in unknown.stderr


def test_runs_fit_a_terminal_and_show_a_named_runs_figures_from_its_nested_run(store):
    """`retain train --run-name` opens a parent run; the model's figures sit on its nested run.
    The table shows them on the parent's line, ids at 8 characters and cutoffs as a month
    range; --json keeps every value whole."""
    train_cutoffs = [
        d.date().isoformat() for d in pd.date_range("2023-07-31", periods=9, freq="ME")
    ]
    with mlflow.start_run(run_name="nightly") as parent:
        mlflow.set_tag("task", "churn")
        with mlflow.start_run(run_name="churn", nested=True) as child:
            mlflow.set_tags({"model": "churn", "label": "label_churn"})
            mlflow.log_params(
                {
                    "train_cutoffs": ",".join(train_cutoffs),
                    "valid_cutoff": "2024-06-30",
                    "test_cutoff": "2024-09-30",
                }
            )
            mlflow.log_metrics({"test_auc": 0.8123, "ece": 0.0123, "lift_at_10": 4.5})
    listed = retain(["runs", "--json", "-"], store)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["runs"]
    assert [r["run_id"] for r in rows] == [parent.info.run_id, child.info.run_id]
    assert rows[0]["test_auc"] == 0.8123 and rows[0]["metrics_from"] == "nested run"
    assert rows[0]["model"] == "churn" and rows[1]["parent_run_id"] == parent.info.run_id
    assert rows[0]["train_cutoffs"] == ",".join(train_cutoffs)  # whole in --json
    lines = listed.stderr.splitlines()
    assert parent.info.run_id not in listed.stderr  # 8 characters in the table
    named = next(line for line in lines if "nightly" in line)
    assert named.split()[0] == parent.info.run_id[:8]
    assert "0.8123" in named and "4.50" in named
    assert "2023-07..2024-03 (9)" in named and "2024-06" in named and "2024-09" in named
    assert max(len(line.rstrip()) for line in lines) <= 140
