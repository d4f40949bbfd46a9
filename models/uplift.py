"""The uplift model artifact: several native LightGBM boosters and how they combine into the
effect of a call (``models/uplift_pyfunc.py``) — saved, logged, registered as ``uplift``,
loaded and verified here, as ``models/artifact.py`` does for the probability models.

Every booster's SHA-256 is written into ``uplift.json``; one hash over that file
(``uplift_sha256``) is a tag on the run and on the model version, and loading checks both before
a booster is read. The model directory carries a ``python_function`` flavour whose loader is
``uplift_pyfunc`` (shipped in ``code/``): no pickle is written or read.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import pyfunc
from mlflow.models import Model
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.tracking import MlflowClient

from models import uplift_pyfunc
from models.artifact import (
    PICKLE_SUFFIXES,
    LoggedModel,
    save_input_example,
    sha256_file,
    ship_loader,
)
from models.boosters import lgb
from models.registry import CHALLENGER, RegistryError, find_version
from models.uplift_pyfunc import PARTS, SPEC_FILE, booster_file, effect, input_matrix

UPLIFT = "uplift"  # the registered model's name
UPLIFT_SHA_TAG = "uplift_sha256"
LOADER = uplift_pyfunc.__name__.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class UpliftArtifact:
    """A fitted uplift learner: its boosters, input columns and combination weight."""

    learner: str
    boosters: dict[str, lgb.Booster]
    features: list[str]
    weight: float = 0.5
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.learner not in PARTS or set(self.boosters) != set(PARTS[self.learner]):
            raise ValueError(
                f"an uplift {self.learner!r} learner needs boosters {PARTS.get(self.learner)}, "
                f"got {sorted(self.boosters)}"
            )

    def spec(self) -> dict:
        return {"learner": self.learner, "features": self.features, "weight": self.weight}

    def effect(self, frame: pd.DataFrame) -> np.ndarray:
        """τ(x) = P(churn | not called) − P(churn | called) for each row of ``frame``."""
        return effect(self.boosters, self.spec(), input_matrix(frame, self.features))

    def save(self, folder: Path) -> str:
        """Boosters (native text) and ``uplift.json`` with their hashes; the spec's hash."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        hashes = {}
        for name, booster in self.boosters.items():
            booster.save_model(str(folder / booster_file(name)))
            hashes[name] = sha256_file(folder / booster_file(name))
        spec = {**self.spec(), "boosters": hashes}
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1), "utf-8")
        return sha256_file(folder / SPEC_FILE)


def verify_dir(folder: Path, label: str, expected: str | None) -> dict:
    """The spec of a model directory after checking it: no pickle, the spec's hash equal to
    ``expected`` and every booster's hash equal to the spec's."""
    pickles = [p.name for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise RegistryError(f"{label} contains pickled files {pickles}; retain never loads those")
    if not (folder / SPEC_FILE).is_file():
        raise RegistryError(f"{label} has no {SPEC_FILE}: not a retain uplift model")
    actual = sha256_file(folder / SPEC_FILE)
    if expected is None or actual != expected:
        raise RegistryError(
            f"{label}: {SPEC_FILE} SHA-256 {actual[:12]}… does not match the training tag "
            f"{str(expected)[:12]}… — refusing to load it"
        )
    spec = json.loads((folder / SPEC_FILE).read_text("utf-8"))
    for name, sha in spec["boosters"].items():
        if sha256_file(folder / booster_file(name)) != sha:
            raise RegistryError(f"{label}: booster {name} does not match its hash — refusing it")
    return spec


def log_uplift(artifact: UpliftArtifact, example: pd.DataFrame) -> LoggedModel:
    """Log ``artifact`` in the active run and register it as ``uplift`` (alias challenger)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        sha = artifact.save(folder)
        code = ship_loader(uplift_pyfunc.__file__, folder)
        model = Model(metadata={**artifact.metadata, UPLIFT_SHA_TAG: sha})
        pyfunc.add_to_model(model, loader_module=LOADER, code=code)
        save_input_example(model, example.head(5), folder)
        model.save(str(folder / MLMODEL_FILE_NAME))
        mlflow.log_artifacts(str(folder), "model")
    run = mlflow.active_run().info.run_id
    registered = mlflow.register_model(f"runs:/{run}/model", UPLIFT)
    version = str(registered.version)
    client = MlflowClient()
    mlflow.set_tag(UPLIFT_SHA_TAG, sha)
    client.set_model_version_tag(UPLIFT, version, UPLIFT_SHA_TAG, sha)
    client.set_registered_model_alias(UPLIFT, CHALLENGER, version)
    return LoggedModel(UPLIFT, version, sha, f"models:/{UPLIFT}/{version}")


@dataclass(frozen=True)
class VerifiedUplift:
    name: str
    version: str
    artifact: UpliftArtifact
    metadata: dict

    def effect(self, frame: pd.DataFrame) -> np.ndarray:
        return self.artifact.effect(frame)


def load_uplift(alias: str | None = None, version: str | None = None) -> VerifiedUplift:
    """The registered uplift model (``@alias`` or ``version``), its hashes checked."""
    found = find_version(UPLIFT, alias, version)
    label = f"{UPLIFT} v{found.version}"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(f"models:/{UPLIFT}/{found.version}", dst_path=tmp)
        )
        spec = verify_dir(local, label, found.tags.get(UPLIFT_SHA_TAG))
        boosters = {}
        for name, sha in spec["boosters"].items():
            raw = (local / booster_file(name)).read_bytes()
            if hashlib.sha256(raw).hexdigest() != sha:  # changed since it was checked
                raise RegistryError(f"{label}: booster {name} changed while loading — refusing it")
            boosters[name] = lgb.Booster(model_str=raw.decode("utf-8"))
        metadata = dict(Model.load(str(local / MLMODEL_FILE_NAME)).metadata or {})
    artifact = UpliftArtifact(
        spec["learner"], boosters, list(spec["features"]), spec["weight"], metadata
    )
    return VerifiedUplift(UPLIFT, str(found.version), artifact, metadata)
