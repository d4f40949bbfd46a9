"""The model artifact: how a trained model is saved, logged and registered, loaded, verified
and turned into calibrated probabilities — the one path training, promotion, batch scoring and
the API take.

A model directory (what MLflow stores under the model version) holds::

    MLmodel            flavours: lightgbm (model.lgb) and python_function (retain_pyfunc)
    model.lgb          the booster, LightGBM's native text format
    calibration.json   the calibration (isotonic knots / Platt a, b), or null
    features.json      the input columns, in the booster's order
    code/retain_pyfunc.py   the loader MLflow's pyfunc uses: calibrated probabilities
    input_example.json   five rows of the model's inputs (pandas' split orient)
    conda.yaml, python_env.yaml, requirements.txt, …

The MLmodel file carries a signature: every input column with its type as the training frame
holds it (``double``, ``long``, ``boolean``; a flat table's categories as ``string``) and the
calibrated probability as output — so ``mlflow models serve`` checks what it is sent, and
``mlflow.pyfunc`` accepts the rows of a feature file as they are.

The booster's SHA-256 is a tag on the run and on the model version (``booster_sha256``); a
second tag (``artifact_sha256``) covers booster, calibration and feature list together. Loading
from the registry checks both before anything is read, and accepts only the lightgbm flavour
(next to python_function). Nothing is pickled, nothing pickled is ever loaded.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cached_property, partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow import pyfunc
from mlflow.models import Model, ModelSignature, infer_signature
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec, Schema

from models import compiled_trees, retain_pyfunc
from models.boosters import lgb
from models.calibration import Calibrator
from models.registry import CHALLENGER, SHA_TAG, RegistryError, find_version
from models.retain_pyfunc import BOOSTER_FILE, CALIBRATION_FILE, FEATURES_FILE

ARTIFACT_SHA_TAG = "artifact_sha256"
LOADER_MODULE = retain_pyfunc.__name__.rsplit(".", 1)[-1]  # "retain_pyfunc", as shipped
FLAVOURS = {"lightgbm", "python_function"}
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")  # refused in a model directory
EXAMPLE_FILE = "input_example.json"
EXAMPLE_ROWS = 5  # rows of the input example logged with a model


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_sha256(folder: Path) -> str:
    """One hash over booster, calibration and feature list (each file's hash, in order)."""
    parts = [
        f"{name}:{sha256_file(Path(folder) / name)}"
        for name in (BOOSTER_FILE, CALIBRATION_FILE, FEATURES_FILE)
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model as retain ships it.

    ``metadata`` describes it (label, products, test cutoff, catalog version…) and is written
    into the MLmodel file; ``calibrator`` None means the booster's probability is used as is.
    """

    booster: lgb.Booster
    calibrator: Calibrator | None
    features: list[str]
    metadata: dict = field(default_factory=dict)

    @cached_property
    def _scorer(self) -> retain_pyfunc.CalibratedBooster:
        calibration = self.calibrator.to_json() if self.calibrator else None
        raw = partial(compiled_trees.predict, self.booster)  # LightGBM's bits, faster for many
        return retain_pyfunc.CalibratedBooster(self.booster, calibration, self.features, raw)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities for the rows of ``frame`` (extra columns are ignored)."""
        return self._scorer.predict(frame)

    def predict_inputs(self, inputs) -> np.ndarray:
        """Calibrated probabilities from an input matrix already in ``features`` order."""
        return self._scorer.predict_inputs(inputs)

    def save(self, folder: Path) -> str:
        """Write booster, calibration and feature list into ``folder``; the booster's SHA-256."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / BOOSTER_FILE))
        calibration = self.calibrator.to_json() if self.calibrator else None
        (folder / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=1), "utf-8")
        (folder / FEATURES_FILE).write_text(json.dumps({"features": list(self.features)}), "utf-8")
        return sha256_file(folder / BOOSTER_FILE)

    @classmethod
    def load(cls, folder: Path, metadata: dict | None = None) -> ModelArtifact:
        """Read a model directory (no hash check: use ``load_verified`` for registered ones)."""
        scorer = retain_pyfunc.read_model_dir(folder)
        calibrator = Calibrator.from_json(scorer.calibration) if scorer.calibration else None
        return cls(scorer.booster, calibrator, scorer.features, dict(metadata or {}))


# --- MLflow flavour: what Model.log calls to write the model directory -----------------------


def model_inputs(artifact: ModelArtifact, rows: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns of ``rows``, in its order, as MLflow's schema and JSON carry
    them: categories become their text (``retain_pyfunc`` turns text back into categories)."""
    missing = [f for f in artifact.features if f not in rows.columns]
    if missing:
        raise RegistryError(
            f"the input example lacks {len(missing)} of the model's {len(artifact.features)} "
            f"inputs, e.g. {missing[:5]}"
        )
    inputs = rows[list(artifact.features)].reset_index(drop=True)
    categories = [c for c, t in inputs.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
    return inputs.astype(dict.fromkeys(categories, "object"))


def signature_of(artifact: ModelArtifact, example: pd.DataFrame) -> ModelSignature:
    """Inputs typed as ``example`` holds them (the rows of the frame the model was trained
    on, e.g. a feature file's int and bool columns), output the calibrated probability.
    Every input is required (a value may be missing, the column may not: the booster reads
    columns by position)."""
    inferred = infer_signature(example, artifact.predict(example))
    inputs = Schema([ColSpec(c.type, c.name, required=True) for c in inferred.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs)


def save_model(
    path: str,
    artifact: ModelArtifact,
    mlflow_model: Model | None = None,
    input_example: pd.DataFrame | None = None,
) -> Model:
    """Write ``artifact`` as an MLflow model at ``path``: the ``lightgbm`` flavour (model.lgb,
    loadable by ``mlflow.lightgbm``) and a ``python_function`` flavour whose loader is
    ``retain_pyfunc`` (shipped in ``code/``), so pyfunc predictions are calibrated. With
    ``input_example`` (rows holding the model's inputs, typed as in training) the model gets
    five of them as its example and a signature typed like them."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise RegistryError(f"{path} exists and is not empty")
    mlflow_model = mlflow_model or Model()
    sha = artifact.save(path)
    code = ship_loader(retain_pyfunc.__file__, path)
    if input_example is not None:
        example = model_inputs(artifact, input_example.head(EXAMPLE_ROWS))
        mlflow_model.signature = signature_of(artifact, example)
        save_input_example(mlflow_model, example, path)
    mlflow_model.metadata = {
        **artifact.metadata,
        SHA_TAG: sha,
        ARTIFACT_SHA_TAG: artifact_sha256(path),
        "calibration": artifact.calibrator.method if artifact.calibrator else None,
        "n_features": len(artifact.features),
    }
    pyfunc.add_to_model(
        mlflow_model,
        loader_module=LOADER_MODULE,
        code=code,
        conda_env=CONDA_FILE,
        python_env=PYTHON_ENV_FILE,
    )
    mlflow_model.add_flavor(
        "lightgbm",
        lgb_version=lgb.__version__,
        data=BOOSTER_FILE,
        model_class="lightgbm.basic.Booster",
        code=None,
    )
    mlflow_model.save(str(path / MLMODEL_FILE_NAME))
    write_environment(path)
    return mlflow_model


# A model folder's code and environment files, as the MLflow model format names them: the
# loader module in code/ (on sys.path when MLflow loads the model), the pip requirements and
# the conda and virtualenv descriptions that `mlflow models serve` recreates an environment from.
CODE_DIR = "code"
REQUIREMENTS_FILE = "requirements.txt"
CONDA_FILE = "conda.yaml"
PYTHON_ENV_FILE = "python_env.yaml"


def ship_loader(module_file: str, folder: Path) -> str:
    """Copy a pyfunc loader module into ``folder/code/``; the value for ``add_to_model(code=)``."""
    target = Path(folder) / CODE_DIR
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(module_file, target / Path(module_file).name)
    return CODE_DIR


def pinned(name: str) -> str:
    """``name==version`` of the installed package; the bare name when it is not installed."""
    try:
        return f"{name}=={installed(name)}"
    except PackageNotFoundError:
        return name


def write_environment(folder: Path) -> None:
    """The pinned packages a model needs, stated, not inferred (inference imports the model in
    a subprocess, ~10 s a model): requirements.txt, conda.yaml and python_env.yaml."""
    pins = [f"{name}=={installed(name)}" for name in ("mlflow", "lightgbm", "numpy", "pandas")]
    python = platform.python_version()
    (folder / REQUIREMENTS_FILE).write_text("\n".join(pins), encoding="utf-8")
    conda = {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", f"pip<={installed('pip')}", {"pip": pins}],
    }
    (folder / CONDA_FILE).write_text(yaml.safe_dump(conda, default_flow_style=False), "utf-8")
    build = [pinned(name) for name in ("pip", "setuptools", "wheel")]
    python_env = {
        "python": python,
        "build_dependencies": build,
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }
    (folder / PYTHON_ENV_FILE).write_text(yaml.safe_dump(python_env, sort_keys=False), "utf-8")


@dataclass(frozen=True)
class LoggedModel:
    name: str
    version: str
    sha256: str
    model_uri: str


def log_model(artifact: ModelArtifact, name: str, example: pd.DataFrame) -> LoggedModel:
    """Log ``artifact`` in the active run, register it as ``name``, tag the SHA-256 of what
    the store now holds on run and version, and give the new version the ``challenger``
    alias. ``example``: rows holding the model's inputs typed as the training frame holds
    them (the first five become the input example and type the signature)."""
    info = Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        flavor_name="lightgbm",
        registered_model_name=name,
        artifact=artifact,
        input_example=example,
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=tmp))
        sha, whole = sha256_file(local / BOOSTER_FILE), artifact_sha256(local)
    if sha != info.metadata[SHA_TAG]:
        raise RegistryError(f"{name}: the stored booster differs from the one just written")
    client = MlflowClient()
    version = str(info.registered_model_version)
    mlflow.set_tags({SHA_TAG: sha, ARTIFACT_SHA_TAG: whole})
    client.set_model_version_tag(name, version, SHA_TAG, sha)
    client.set_model_version_tag(name, version, ARTIFACT_SHA_TAG, whole)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return LoggedModel(name=name, version=version, sha256=sha, model_uri=info.model_uri)


# --- loading from the registry ----------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedModel:
    """A registered model after its hashes and flavours were checked.

    ``metadata`` is the MLmodel metadata plus ``features`` and ``calibration`` (JSON) as read
    from the model directory."""

    name: str
    version: str
    booster: lgb.Booster
    metadata: dict
    # the booster as verified: its native text and that text's SHA-256 (what Spark ships)
    booster_text: str = field(default="", repr=False, compare=False)
    booster_sha256: str = ""

    @classmethod
    def from_text(
        cls, name: str, version: str, text: str, sha256: str, metadata: dict
    ) -> VerifiedModel:
        """Rebuild a verified model from its native booster text, refusing text whose SHA-256
        is not ``sha256`` (e.g. in a Spark worker: models travel as text, never pickled)."""
        actual = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if actual != sha256:
            raise RegistryError(
                f"{name} v{version}: booster SHA-256 {actual[:12]}… does not match "
                f"{sha256[:12]}… — refusing to load it"
            )
        return cls(name, version, lgb.Booster(model_str=text), dict(metadata), text, sha256)

    @cached_property
    def artifact(self) -> ModelArtifact:
        calibration = self.metadata.get("calibration")
        calibrator = Calibrator.from_json(calibration) if calibration else None
        return ModelArtifact(
            self.booster, calibrator, list(self.metadata["features"]), self.metadata
        )

    @property
    def features(self) -> list[str]:
        return self.artifact.features

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities: the same function MLflow's pyfunc loader applies."""
        return self.artifact.predict(frame)

    def predict_inputs(self, inputs) -> np.ndarray:
        return self.artifact.predict_inputs(inputs)


def check_model_dir(
    folder: Path, label: str, expected_sha: str | None, expected_whole: str | None
) -> Model:
    """Refuse a model directory that is not retain's: a flavour other than lightgbm (with
    python_function), a pickle anywhere, a booster or artifact hash unlike the training tags."""
    model = Model.load(str(folder / MLMODEL_FILE_NAME))
    flavours = set(model.flavors)
    if "lightgbm" not in flavours or flavours - FLAVOURS:
        raise RegistryError(f"{label} is not a LightGBM model: flavours {sorted(flavours)}")
    pickles = [p.name for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise RegistryError(f"{label} contains pickled files {pickles}; retain never loads those")
    booster_file = folder / BOOSTER_FILE
    if not booster_file.is_file():
        raise RegistryError(f"{label} has no {BOOSTER_FILE} (only native boosters load)")
    actual = sha256_file(booster_file)
    if expected_sha is None or actual != expected_sha:
        raise RegistryError(
            f"{label}: booster SHA-256 {actual[:12]}… does not match the training tag "
            f"{str(expected_sha)[:12]}… — refusing to load it"
        )
    if expected_whole is not None and artifact_sha256(folder) != expected_whole:
        raise RegistryError(
            f"{label}: calibration or feature list SHA-256 does not match the training tag "
            f"{ARTIFACT_SHA_TAG} — refusing to load it"
        )
    return model


def load_verified(name: str, alias: str | None = None, version: str | None = None) -> VerifiedModel:
    """Resolve ``models:/name@alias`` (or ``name`` version ``version``), check it and load it."""
    found = find_version(name, alias, version)
    label = f"{name}@{alias} (version {found.version})" if alias else f"{name} v{found.version}"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(f"models:/{name}/{found.version}", dst_path=tmp)
        )
        model = check_model_dir(
            local, label, found.tags.get(SHA_TAG), found.tags.get(ARTIFACT_SHA_TAG)
        )
        metadata = dict(model.metadata or {})
        raw = (local / BOOSTER_FILE).read_bytes()
        if hashlib.sha256(raw).hexdigest() != found.tags.get(SHA_TAG):  # changed since checked
            raise RegistryError(f"{label}: booster changed while loading — refusing it")
        if (local / CALIBRATION_FILE).is_file():
            loaded = ModelArtifact.load(local)
            booster, features = loaded.booster, loaded.features
            calibration = loaded.calibrator.to_json() if loaded.calibrator else None
        else:  # logged before the artifact had its own files: calibration rode in metadata
            booster = lgb.Booster(model_file=str(local / BOOSTER_FILE))
            features, calibration = metadata["features"], metadata.get("calibration")
    metadata.update(features=list(features), calibration=calibration)
    text, sha = raw.decode("utf-8"), found.tags[SHA_TAG]
    return VerifiedModel(name, str(found.version), booster, metadata, text, sha)


def save_input_example(mlflow_model: Model, example: pd.DataFrame, folder: Path) -> None:
    """Write ``example`` into the model folder as MLflow reads it back
    (``Model.load_input_example``, ``PyFuncModel.input_example``): the frame in pandas' split
    orient without its index, named in the MLmodel file's ``saved_input_example_info``."""
    (Path(folder) / EXAMPLE_FILE).write_text(example.to_json(orient="split", index=False))
    mlflow_model.saved_input_example_info = {
        "artifact_path": EXAMPLE_FILE,
        "type": "dataframe",
        "pandas_orient": "split",
    }
