"""Flat-table mode on real public bank tables, through the command a data scientist runs."""

from __future__ import annotations

import json
import os
import subprocess

import mlflow
import pandas as pd
import pytest

from tests import retain_process
from tests.conftest import DATASETS

pytestmark = pytest.mark.skipif(not DATASETS.is_dir(), reason="shared datasets not present")


def train(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    return retain_process.run(["train", *args], env)


def load_from(store: str, uri: str) -> mlflow.pyfunc.PyFuncModel:
    """MLflow's pyfunc model ``uri`` of the store ``store``; the process's store is restored."""
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    try:
        return mlflow.pyfunc.load_model(uri)
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)


def test_churn_modelling_with_defaults_reaches_a_hand_made_lightgbm(tmp_path):
    out = tmp_path / "summary.json"
    result = train(
        tmp_path,
        "--table",
        str(DATASETS / "Churn_Modelling.csv"),
        "--target",
        "Exited",
        "--id",
        "CustomerId",
        "--drop",
        "RowNumber,Surname",
        "--register",
        "flat_churn",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["metrics"]["cv_auc"] >= 0.868  # a hand-made LightGBM reaches 0.868
    assert 0 < summary["metrics"]["cv_auc_std"] < 0.02
    assert summary["rows"] == 10_000 and len(summary["features"]) == 10
    assert summary["models"] == {"flat_churn": "1"}
    # registered with a signature: every input typed, the table's text columns as text
    model = load_from(f"sqlite:///{tmp_path / 'mlflow.db'}", "models:/flat_churn/1")
    schema = model.metadata.get_input_schema()
    types = {spec.name: spec.type.name for spec in schema.inputs}
    assert list(types) == summary["features"]
    assert types["Geography"] == types["Gender"] == "string"
    assert types["Age"] == "long" and types["Balance"] == "double"
    p = model.predict(model.input_example)
    assert p.shape == (5,) and ((p > 0) & (p < 1)).all()
    table = pd.read_csv(DATASETS / "Churn_Modelling.csv").head(20)
    assert model.predict(table[summary["features"]]).shape == (20,)  # text as pandas reads it


def test_bank_marketing_without_duration(tmp_path):
    out = tmp_path / "summary.json"
    result = train(
        tmp_path,
        "--table",
        str(DATASETS / "bank-full.csv"),
        "--target",
        "y",
        "--drop",
        "duration",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(out.read_text())["metrics"]["cv_auc"] >= 0.80


def test_bad_target_cells_are_named_without_a_traceback(tmp_path):
    table = tmp_path / "dirty.csv"
    rows = ["age;balance;left"] + [
        f"{30 + i % 40};{1000 * i};{'yes' if i % 3 else 'no'}" for i in range(60)
    ]
    rows[7] = "41;5000;?"
    table.write_text("\r\n".join(rows) + "\r\n")
    result = train(tmp_path, "--table", str(table), "--target", "left")
    assert result.returncode == 1
    assert "line 8" in result.stderr and "Traceback" not in result.stderr
