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
    with mlflow.start_run():
        return log_model(artifact, name, random_frame(5, 9)[FEATURES].astype("float64")).version


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
    assert imports <= {"__future__", "json", "pathlib", "lightgbm", "numpy", "pandas"}
    assert "pickle" not in source.replace("never unpickles", "")
    assert "retain_pyfunc" not in sys.builtin_module_names
