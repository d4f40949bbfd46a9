"""`retain score --engine spark`: scores and reasons computed inside Spark, by the same pandas
functions the DuckDB path calls, so the two paths give the same numbers.

The champion boosters travel to the workers as their native LightGBM text with its SHA-256
(plain strings in a broadcast); each Python worker rebuilds ``VerifiedModel`` objects from the
text after checking the hash (``VerifiedModel.from_text``) — no model object is ever pickled.
Each Arrow batch of the feature table goes through ``score_frame`` and ``explain_churn``
(``mapInPandas``); the growth reasons, which need the offers (chosen on the driver with
bank-wide medians), go through ``explain_growth`` in a second pass over the rows with an offer.
Spark writes both results as parquet into a scratch folder next to the output (shared storage
on a cluster); the driver reads those narrow tables back, aligned on ``customer_id``. Every row
is scored and explained on its own, so cutting the table into batches changes nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import RiskBands, WarehouseConfig
from features.engine import spark_session
from features.products import products_from_json
from features.targets import ELIGIBLE_CHURN, UPGRADE
from models.artifact import VerifiedModel
from serving.champions import ModelSet
from serving.explain import TOP_K, ReasonGroups, Reasons
from serving.score import explain_churn, explain_growth, growth_reason_columns, score_frame

EXPLAINED = "explained"
# the reason arrays of the churn explanation, one column per rank: Reasons field → type
REASON_FIELDS = {
    "feature": "int",
    "group": "int",
    "value": "double",
    "contribution": "double",
    "context": "boolean",
}
_MODELS: dict[tuple, ModelSet] = {}  # per worker process: boosters rebuilt once per model set


def ship(models: ModelSet) -> list[tuple[str, str, str, str, str]]:
    """The models as plain strings: (name, version, native booster text, its SHA-256,
    metadata as JSON), churn first, then the cross-sell models in order, then upgrade."""
    shipped = []
    for model in models.all():
        if not model.booster_text:
            raise ValueError(f"{model.name} v{model.version} has no verified booster text")
        metadata = json.dumps(model.metadata, default=str)
        shipped.append(
            (model.name, model.version, model.booster_text, model.booster_sha256, metadata)
        )
    return shipped


def unship(shipped: list[tuple[str, str, str, str, str]]) -> ModelSet:
    """Rebuild the model set from :func:`ship`'s strings, each booster's hash checked first
    (cached per worker process, keyed by the hashes)."""
    key = tuple((name, version, sha) for name, version, _, sha, _ in shipped)
    if key not in _MODELS:
        models = [
            VerifiedModel.from_text(name, version, text, sha, json.loads(metadata))
            for name, version, text, sha, metadata in shipped
        ]
        _MODELS[key] = ModelSet.of(models)
    return _MODELS[key]


def reason_count(models: ModelSet) -> int:
    """How many reason ranks ``explain_churn`` returns for the churn model."""
    churn = models.churn
    products = products_from_json(churn.metadata.get("products", []))
    return min(TOP_K, len(ReasonGroups.for_features(churn.features, products).names))


def _score_batches(batches, shipped, bands: dict, above: float, ranks: int):
    """mapInPandas: scores and churn reason arrays of every row of every batch."""
    models = unship(shipped.value)
    risk_bands = RiskBands(**bands)
    for frame in batches:
        frame = frame.reset_index(drop=True)
        scores = score_frame(models, frame, risk_bands)
        reasons = explain_churn(models, frame, scores, above)
        out = {column: scores[column].to_numpy() for column in scores.columns}
        explained = np.zeros(len(frame), dtype=bool)
        explained[reasons.rows] = True
        out[EXPLAINED] = explained
        for name, kind in REASON_FIELDS.items():
            values = getattr(reasons, name)
            for rank in range(ranks):
                column = np.full(len(frame), _EMPTY[kind], dtype=_NUMPY[kind])
                column[reasons.rows] = values[:, rank]
                out[f"{name}_{rank}"] = column
        yield pd.DataFrame(out)


def _growth_batches(batches, shipped, langs: tuple[str, ...]):
    """mapInPandas: growth reason texts for rows with a growth offer."""
    models = unship(shipped.value)
    for frame in batches:
        frame = frame.reset_index(drop=True)
        texts = explain_growth(models, frame, frame["growth_offer"], langs)
        yield pd.DataFrame({"customer_id": frame["customer_id"].to_numpy(), **texts})


_NUMPY = {"int": np.int32, "double": np.float64, "boolean": bool}
_EMPTY = {"int": -1, "double": np.nan, "boolean": False}


class SparkScorer:
    """Score and explain the feature table at ``features_path`` inside Spark.

    ``features`` is the same table as read by the driver: results come back aligned with it.
    ``scratch`` (removed by :meth:`close`) is created next to ``features_path``.
    """

    def __init__(
        self,
        models: ModelSet,
        features_path: Path,
        features: pd.DataFrame,
        settings: WarehouseConfig,
    ):
        self.models = models
        self.features_path = Path(features_path)
        self.ids = features["customer_id"]
        self.spark = spark_session(settings)
        self.shipped = self.spark.sparkContext.broadcast(ship(models))
        where = self.features_path.parent.parent
        self.scratch = Path(tempfile.mkdtemp(prefix=".spark-scoring.", dir=where))

    def close(self) -> None:
        self.shipped.destroy()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _table(self, models: list[VerifiedModel], *extra: str):
        """The feature table in Spark with the columns ``models`` and the functions read."""
        inputs = [f for m in models for f in m.features]
        columns = list(dict.fromkeys(["customer_id", *extra, *inputs]))
        return self.spark.read.parquet(str(self.features_path)).select(*columns)

    def _read(self, name: str) -> pd.DataFrame:
        """A result Spark wrote, indexed like the driver's feature table."""
        frame = pd.read_parquet(self.scratch / name)
        if frame["customer_id"].duplicated().any():
            raise ValueError("Spark scoring: a customer appears twice at one cutoff")
        return frame.set_index("customer_id").reindex(self.ids.to_numpy())

    def score_and_explain(self, bands: RiskBands, above: float) -> tuple[pd.DataFrame, Reasons]:
        """What ``score_frame`` and ``explain_churn`` return, computed in the workers."""
        models, ranks = self.models, reason_count(self.models)
        table = self._table(models.all(), ELIGIBLE_CHURN, "leaving_now")
        key = table.schema["customer_id"].dataType.simpleString()
        names = [t.score for t, _ in models.targets() if t != UPGRADE]
        names.insert(1, "risk_band")  # score_frame's order: p_churn, risk_band, propensities
        types = ["string" if n == "risk_band" else "double" for n in names]
        columns = [("customer_id", key), *zip(names, types, strict=True)]
        columns += [(UPGRADE.score, "double"), (EXPLAINED, "boolean")]
        columns += [
            (f"{name}_{rank}", kind)
            for name, kind in REASON_FIELDS.items()
            for rank in range(ranks)
        ]
        schema = ", ".join(f"`{c}` {t}" for c, t in columns)
        run = partial(
            _score_batches,
            shipped=self.shipped,
            bands=bands.model_dump(),
            above=float(above),
            ranks=ranks,
        )
        table.mapInPandas(run, schema).write.parquet(str(self.scratch / "scores"))
        frame = self._read("scores")
        kept = [*names, UPGRADE.score]
        ids = {"customer_id": self.ids.to_numpy()}
        scores = pd.DataFrame(ids | {c: frame[c].to_numpy() for c in kept})
        rows = np.flatnonzero(frame[EXPLAINED].to_numpy(dtype=bool))
        arrays = {
            name: np.stack(
                [frame[f"{name}_{r}"].to_numpy()[rows] for r in range(ranks)], axis=1
            ).reshape(len(rows), ranks)
            for name in REASON_FIELDS
        }
        churn = models.churn
        products = products_from_json(churn.metadata.get("products", []))
        reasons = Reasons(
            rows=rows,
            feature=arrays["feature"].astype(np.int64),
            group=arrays["group"].astype(np.int64),
            value=arrays["value"].astype(np.float64),
            contribution=arrays["contribution"].astype(np.float64),
            groups=ReasonGroups.for_features(churn.metadata["features"], products),
            context=arrays["context"].astype(bool),
        )
        return scores, reasons

    def explain_growth(
        self, models: ModelSet, features: pd.DataFrame, offers: pd.Series, langs
    ) -> dict[str, np.ndarray]:
        """What ``explain_growth`` returns, computed in the workers for rows with an offer."""
        columns = growth_reason_columns(len(features), langs)
        offered = pd.DataFrame(
            {"customer_id": self.ids.to_numpy(), "growth_offer": offers.to_numpy(dtype=object)}
        ).dropna(subset=["growth_offer"])
        if offered.empty:
            return columns
        offered.to_parquet(self.scratch / "offers.parquet", index=False)
        growth_models = [models.upgrade, *models.cross_sell.values()]
        table = self._table(growth_models).join(
            self.spark.read.parquet(str(self.scratch / "offers.parquet")), "customer_id"
        )
        key = table.schema["customer_id"].dataType.simpleString()
        schema = ", ".join([f"`customer_id` {key}", *[f"`{c}` string" for c in columns]])
        run = partial(_growth_batches, shipped=self.shipped, langs=tuple(langs))
        table.mapInPandas(run, schema).write.parquet(str(self.scratch / "growth"))
        frame = self._read("growth")
        for name in columns:
            values = frame[name].to_numpy(dtype=object)
            columns[name] = np.where(pd.isna(values), None, values).astype(object)
        return columns
