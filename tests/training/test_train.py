"""Training end to end on a small synthetic bank, with a real MLflow store in a temp folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.build import parse_cutoffs
from features.config import BankConfig
from features.materialize import write_features
from features.sources.synthetic import SynthConfig, write_bank
from training.dataset import as_inputs, split_out_of_time
from training.promote import promote
from training.register import CHALLENGER, CHAMPION, load_verified, use_store
from training.run import train_task
from training.train import TrainConfig


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    write_bank(SynthConfig(customers=6_000, seed=3), root / "bank")
    out = root / "features.parquet"
    write_features(root / "bank", parse_cutoffs("2023-10-31:2024-09-30"), out, BankConfig())
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlruns")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    use_store(root)
    yield uri
    patch.undo()


@pytest.fixture(scope="module")
def churn(feature_file, store) -> dict:
    return train_task(feature_file, "churn", TrainConfig())


def test_churn_model_approaches_the_truth_and_beats_the_baselines(churn):
    m = churn["per_model"]["churn"]
    full = churn["metrics"]
    # 6k customers: ~2,600 test rows and ~100 churners, so the AUC itself has a standard
    # error of ~0.015; on 20k customers the ratio measured 0.95-0.97 (see the issue note)
    assert m["auc_to_oracle"] >= 0.90
    assert m["ece"] <= 0.03
    assert full["lift_at_10"] == m["lift_at_10"]
    run = MlflowClient().get_run(churn_run_id(churn))
    assert run.data.metrics["lift_at_10_over_logistic_regression"] > 1.0
    assert run.data.metrics["lift_at_10_over_rule_of_thumb"] > 1.0


def churn_run_id(summary: dict) -> str:
    client = MlflowClient()
    version = client.get_model_version("churn", summary["models"]["churn"])
    return version.run_id


def test_run_logs_plots_card_fingerprint_and_a_native_booster(churn):
    client = MlflowClient()
    run_id = churn_run_id(churn)
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"plots", "data", "model_card.md", "model_extras"} <= names
    plots = {Path(a.path).name for a in client.list_artifacts(run_id, "plots")}
    assert {
        "roc.png",
        "gains.png",
        "calibration.png",
        "importance.png",
        "shap_summary.png",
    } <= plots
    run = client.get_run(run_id)
    assert len(run.data.tags["booster_sha256"]) == 64
    assert run.data.tags["git_sha"]
    model = load_verified("churn", CHALLENGER)
    assert model.metadata["calibration"]["method"] in ("isotonic", "platt")


def test_round_trip_through_the_registry_gives_identical_predictions(churn, feature_file):
    promote("churn")
    frame = pd.read_parquet(feature_file)
    ds = split_out_of_time(frame, "label_churn")
    model = load_verified("churn", CHAMPION)
    loaded = mlflow.lightgbm.load_model("models:/churn@champion")
    x = as_inputs(ds.test.rows, model.metadata["features"])
    np.testing.assert_array_equal(loaded.predict(x), model.booster.predict(x))


def test_a_worse_challenger_stays_out_and_a_better_one_gets_in(churn, feature_file):
    promote("churn")  # the trained model is champion
    champion = load_verified("churn", CHAMPION).version
    weak = train_task(feature_file, "churn", TrainConfig(num_boost_round=1, num_leaves=2))
    decision = promote("churn")
    assert decision["promoted"] is False
    assert load_verified("churn", CHAMPION).version == champion
    assert decision["comparison"]["challenger"]["auc"] < decision["comparison"]["champion"]["auc"]
    assert weak["models"]["churn"] == decision["challenger"]

    forced = promote("churn", force=True)  # now the weak model is champion
    assert forced["promoted"] is True and "--force" in forced["reason"]
    strong = train_task(feature_file, "churn", TrainConfig(seed=1))
    decision = promote("churn")
    assert decision["promoted"] is True
    assert decision["comparison"]["challenger"]["auc"] > decision["comparison"]["champion"]["auc"]
    assert load_verified("churn", CHAMPION).version == strong["models"]["churn"]


def test_a_copied_label_fails_the_run_with_a_clear_message(feature_file, store, tmp_path):
    frame = pd.read_parquet(feature_file)
    frame["days_since_rm_contact"] = frame["label_churn"]  # the answer, disguised as a feature
    leaky = tmp_path / "leaky.parquet"
    frame.to_parquet(leaky)
    before = len(MlflowClient().search_model_versions("name='churn'"))
    result = subprocess.run(
        [sys.executable, "-m", "retain", "train", "--features", str(leaky), "--task", "churn"],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                           "MLFLOW_TRACKING_URI": store},
    )  # fmt: skip
    assert result.returncode == 1
    assert "leakage" in result.stderr and "days_since_rm_contact" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(MlflowClient().search_model_versions("name='churn'")) == before
    failed = mlflow.search_runs(filter_string="attributes.status = 'FAILED'")
    assert len(failed) >= 1
