"""The model artifact: saved, logged, loaded, verified and predicted in one place — on a tiny
booster trained on a random frame, in a private MLflow store (no feature pipeline needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.artifact import (
    ModelArtifact,
    artifact_sha256,
    load_verified,
    log_model,
    sha256_file,
)
from models.calibration import Calibrator
from models.registry import CHALLENGER, CHAMPION, SHA_TAG, RegistryError, set_champion, use_store

FEATURES = ["aum_change_3m", "tenure_months", "has_salary", "complaints_12m"]


def random_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "aum_change_3m": rng.normal(size=n),
            "tenure_months": rng.integers(1, 200, size=n).astype("float64"),
            "has_salary": rng.random(n) < 0.6,
            "complaints_12m": rng.poisson(0.3, size=n).astype("float64"),
        }
    )
    frame.loc[rng.random(n) < 0.05, "aum_change_3m"] = np.nan  # missing at scoring time
    risk = -frame["aum_change_3m"].fillna(0) + 0.8 * frame["complaints_12m"] - frame["has_salary"]
    frame["label_churn"] = (risk + rng.normal(size=n) > 0.5).astype(int)
    return frame


def tiny_artifact(calibrator: Calibrator | None, seed: int = 0) -> ModelArtifact:
    frame = random_frame(600, seed)
    x = frame[FEATURES].astype("float64")
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": seed},
        lgb.Dataset(x, frame["label_churn"]),
        num_boost_round=15,
    )
    return ModelArtifact(booster, calibrator, FEATURES, {"label": "label_churn"})


ISOTONIC = Calibrator("isotonic", {"x": [0.0, 0.2, 0.5, 1.0], "y": [0.01, 0.1, 0.4, 0.9]})
PLATT = Calibrator("platt", {"a": 0.9, "b": -0.4})


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_store(tmp_path)
    return tmp_path


def register(artifact: ModelArtifact, name: str = "churn") -> str:
    with mlflow.start_run():  # the example: rows as the training frame holds them
        return log_model(artifact, name, random_frame(5, 9)).version


def model_dir(store: Path, name: str, version: str) -> Path:
    """The stored model directory of ``name`` ``version`` (the one holding its booster)."""
    expected = MlflowClient().get_model_version(name, version).tags[SHA_TAG]
    hits = [p.parent for p in store.rglob("model.lgb") if sha256_file(p) == expected]
    assert hits, f"no stored booster for {name} v{version}"
    return hits[0]


@pytest.mark.parametrize("calibrator", [ISOTONIC, PLATT, None], ids=["isotonic", "platt", "none"])
def test_save_and_load_round_trip_gives_identical_predictions(calibrator, tmp_path):
    artifact = tiny_artifact(calibrator)
    sha = artifact.save(tmp_path / "model")
    assert sha == sha256_file(tmp_path / "model" / "model.lgb")
    loaded = ModelArtifact.load(tmp_path / "model")
    frame = random_frame(300, 1)
    np.testing.assert_array_equal(loaded.predict(frame), artifact.predict(frame))
    assert loaded.features == FEATURES and loaded.calibrator == calibrator
    raw = artifact.booster.predict(frame[FEATURES].astype("float64"))
    expected = calibrator.apply(raw) if calibrator else raw
    np.testing.assert_allclose(artifact.predict(frame), expected, rtol=0, atol=1e-12)


def test_calibrator_survives_json():
    for calibrator in (ISOTONIC, PLATT):
        again = Calibrator.from_json(json.loads(json.dumps(calibrator.to_json())))
        assert again == calibrator
        np.testing.assert_array_equal(again.apply([0.1, 0.7]), calibrator.apply([0.1, 0.7]))


def test_the_registry_gives_back_the_calibrated_model_and_mlflow_pyfunc_agrees(store):
    artifact = tiny_artifact(ISOTONIC)
    version = register(artifact)
    set_champion("churn", version, "test")
    frame = random_frame(400, 2)
    model = load_verified("churn", CHAMPION)
    ours = model.predict(frame)
    np.testing.assert_array_equal(ours, artifact.predict(frame))
    # MLflow's own loader applies the same calibration: no raw booster probability
    pyfunc = mlflow.pyfunc.load_model("models:/churn@champion").predict(frame[FEATURES])
    np.testing.assert_allclose(np.asarray(pyfunc), ours, rtol=0, atol=1e-9)
    raw = artifact.booster.predict(frame[FEATURES].astype("float64"))
    assert np.abs(ours - raw).max() > 0.01  # the calibration does something here
    # and the lightgbm flavour still loads the plain booster
    booster = mlflow.lightgbm.load_model("models:/churn@champion")
    np.testing.assert_array_equal(booster.predict(frame[FEATURES].astype("float64")), raw)


def test_the_model_directory_holds_no_pickle_and_both_flavours(store):
    version = register(tiny_artifact(PLATT))
    folder = model_dir(store, "churn", version)
    names = {p.name for p in folder.rglob("*") if p.is_file()}
    assert {"MLmodel", "model.lgb", "calibration.json", "features.json"} <= names
    assert (folder / "code" / "retain_pyfunc.py").is_file()
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib"))]
    assert not [p for p in store.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    mlmodel = mlflow.models.Model.load(str(folder / "MLmodel"))
    assert set(mlmodel.flavors) == {"lightgbm", "python_function"}
    assert mlmodel.flavors["lightgbm"]["data"] == "model.lgb"
    assert mlmodel.flavors["python_function"]["loader_module"] == "retain_pyfunc"
    assert mlmodel.metadata["booster_sha256"] == sha256_file(folder / "model.lgb")
    assert str(MlflowClient().get_model_version_by_alias("churn", CHALLENGER).version) == version


def schema_types(uri: str) -> dict[str, str]:
    """``{column: type}`` of a registered model's MLflow input signature, as pyfunc reads it."""
    schema = mlflow.pyfunc.load_model(uri).metadata.get_input_schema()
    assert schema is not None, f"{uri} has no signature"
    return {spec.name: spec.type.name for spec in schema.inputs}


def test_a_registered_model_has_a_typed_signature_and_predicts_its_input_example(store):
    artifact = tiny_artifact(ISOTONIC)
    version = register(artifact)
    uri = f"models:/churn/{version}"
    assert schema_types(uri) == {
        "aum_change_3m": "double",
        "tenure_months": "double",
        "has_salary": "boolean",
        "complaints_12m": "double",
    }
    model = mlflow.pyfunc.load_model(uri)
    example = model.input_example
    assert list(example.columns) == FEATURES and len(example) == 5
    np.testing.assert_allclose(model.predict(example), artifact.predict(example), atol=1e-12)
    assert model.metadata.get_output_schema().inputs[0].type.name == "float64"
    # the signature is enforced: a column the model needs is named when it is missing
    with pytest.raises(mlflow.exceptions.MlflowException, match="has_salary"):
        model.predict(example.drop(columns=["has_salary"]))


def test_a_flat_tables_categories_are_text_in_the_signature_and_the_example(store):
    """A flat table's text columns are pandas categories in training; MLflow's schema and JSON
    carry text, which the shipped loader turns back into the booster's categories."""
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            "Age": rng.integers(18, 90, n),
            "Balance": rng.normal(size=n),
            "Geography": pd.Categorical(rng.choice(["France", "Spain", "Germany"], n)),
        }
    )
    frame.loc[2, "Geography"] = np.nan  # a missing category in the example
    y = (frame["Balance"] + (frame["Geography"] == "Germany") + rng.normal(size=n) > 1).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1}, lgb.Dataset(frame, y), 10
    )
    artifact = ModelArtifact(booster, None, list(frame.columns), {"label": "Exited"})
    with mlflow.start_run():
        version = log_model(artifact, "flat_churn", frame).version
    uri = f"models:/flat_churn/{version}"
    assert schema_types(uri) == {"Age": "long", "Balance": "double", "Geography": "string"}
    model = mlflow.pyfunc.load_model(uri)
    example = model.input_example
    assert example["Geography"].isna().sum() == 1
    expected = artifact.predict(frame.head(5))
    np.testing.assert_allclose(model.predict(example), expected, atol=1e-12)
    as_text = frame.head(50).astype({"Geography": "object"})
    np.testing.assert_allclose(model.predict(as_text), artifact.predict(frame.head(50)), atol=1e-12)


def test_a_tampered_booster_is_refused_naming_the_sha_mismatch(store):
    version = register(tiny_artifact(ISOTONIC))
    booster_file = model_dir(store, "churn", version) / "model.lgb"
    booster_file.write_text(booster_file.read_text().replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(RegistryError, match=r"booster SHA-256 .* does not match the training tag"):
        load_verified("churn", CHALLENGER)


def test_a_tampered_calibration_is_refused(store):
    version = register(tiny_artifact(ISOTONIC))
    folder = model_dir(store, "churn", version)
    before = artifact_sha256(folder)
    (folder / "calibration.json").write_text(json.dumps(PLATT.to_json()))
    assert artifact_sha256(folder) != before
    with pytest.raises(RegistryError, match="calibration or feature list SHA-256"):
        load_verified("churn", version=version)


def test_a_pickle_in_the_model_directory_is_refused(store):
    version = register(tiny_artifact(None))
    (model_dir(store, "churn", version) / "python_model.pkl").write_bytes(b"not loaded")
    with pytest.raises(RegistryError, match="pickled"):
        load_verified("churn", CHALLENGER)


def test_a_missing_model_is_named():
    with pytest.raises(RegistryError, match="no model nobody"):
        load_verified("nobody", CHAMPION)


def test_the_shipped_loader_imports_nothing_of_retain():
    source = (Path(__file__).resolve().parents[2] / "models" / "retain_pyfunc.py").read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imports <= {"__future__", "json", "pathlib", "typing", "lightgbm", "numpy", "pandas"}
    assert "pickle" not in source.replace("never unpickles", "")
    assert "retain_pyfunc" not in sys.builtin_module_names
