"""What the API serves from: verified champion models, a scored snapshot, keys and audit log.

Built once per worker at start-up. ``ServingState.load`` never raises: a problem (registry
unreachable, a model missing, a hash mismatch, a broken snapshot) leaves ``ready`` False and
``problem`` naming it, so the service answers 503 on every data route and ``/readyz`` stays
unready — it never serves a partial or unverified set of models.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.config import BankConfig, ListPolicy
from features.products import products_from_json
from models.registry import tracking_uri, use_store
from serving.auth import AuditLog, KeyRing
from serving.batch import ModelSet, load_champions, score_frame, with_language
from serving.explain import explain
from serving.lists import build_growth_lists, build_lists, list_owner
from serving.schemas import nullable_features

log = logging.getLogger("retain.service")

ENV_SCORES, ENV_KEYS, ENV_AUDIT = "RETAIN_SCORES", "RETAIN_KEYS", "RETAIN_AUDIT_LOG"
# the resolved configuration as JSON, set by `retain serve` (the front door loads the file)
ENV_CONFIG = "RETAIN_BANK_CONFIG"
DEFAULT_KEYS = Path("data/keys.json")


@dataclass
class Snapshot:
    """A `retain score` output directory, indexed by customer_id."""

    cutoff: str
    features: pd.DataFrame
    scores: pd.DataFrame
    rms: pd.DataFrame
    versions: dict[str, str]
    policy: ListPolicy = field(default_factory=ListPolicy)

    @classmethod
    def load(cls, folder: Path) -> Snapshot:
        features = pd.read_parquet(folder / "features.parquet").set_index("customer_id")
        scores = pd.read_parquet(folder / "scores.parquet").set_index("customer_id")
        # whose list each customer is on, once: every list request filters by it
        scores["list_id"] = list_owner(scores).to_numpy()
        rms = pd.read_parquet(folder / "rms.parquet")
        versions = {
            c.removeprefix("model_version_"): str(scores[c].iloc[0])
            for c in scores.columns
            if c.startswith("model_version_")
        }
        cutoff = pd.Timestamp(features["cutoff"].iloc[0]).date().isoformat()
        return cls(cutoff, features, scores, rms, versions)

    def book(self, rm_id: str) -> pd.Index:
        return self.scores.index[self.scores["rm_id"].astype("string") == rm_id]

    @property
    def integer_ids(self) -> bool:
        return pd.api.types.is_integer_dtype(self.scores.index)

    def key(self, customer_id):
        """``customer_id`` as this bank's ids are kept, or None when it cannot be one of them:
        a string never matches an integer id by dropping zeros, a number never a string id."""
        if self.integer_ids:
            if isinstance(customer_id, str):
                digits = customer_id.isdigit() and str(int(customer_id)) == customer_id
                return int(customer_id) if digits else None
            return customer_id if isinstance(customer_id, int) else None
        return customer_id if isinstance(customer_id, str) else None

    def owner(self, customer_ids: list) -> pd.Series:
        return self.scores["rm_id"].astype("string").reindex(customer_ids)

    def _book_rows(self, rm_id: str, lang: str) -> pd.DataFrame:
        rows = self.scores[self.scores["list_id"] == rm_id]
        return with_language(rows.reset_index(), lang)

    def retention_list(self, rm_id: str, k: int | None, lang: str) -> pd.DataFrame:
        """The RM's retention list, exactly as ``retain score`` ranks it (list policy of the
        served configuration)."""
        return build_lists(self._book_rows(rm_id, lang), self.rms, self.policy, k)

    def growth_list(self, rm_id: str, lang: str) -> pd.DataFrame:
        rows = self._book_rows(rm_id, lang)
        retention = build_lists(rows, self.rms, self.policy)
        return build_growth_lists(rows, self.rms, self.policy, retention)


@dataclass
class ServingState:
    ready: bool = False
    problem: str | None = None
    models: ModelSet | None = None
    features: list[str] = field(default_factory=list)
    nullable: set[str] = field(default_factory=set)
    snapshot: Snapshot | None = None
    keys: KeyRing | None = None
    audit: AuditLog | None = None
    config: BankConfig = field(default_factory=BankConfig)

    @classmethod
    def load(cls) -> ServingState:
        keys_path = Path(os.environ.get(ENV_KEYS, DEFAULT_KEYS))
        audit = Path(os.environ.get(ENV_AUDIT, keys_path.parent / "audit.log"))
        state = cls(keys=KeyRing(keys_path), audit=AuditLog(audit))
        try:
            if payload := os.environ.get(ENV_CONFIG):
                state.config = BankConfig.model_validate_json(payload)
            use_store()
            state.models = load_champions()
            state.features = _feature_union(state.models)
            state.nullable = set.intersection(
                *(
                    nullable_features(m.booster)
                    | (set(state.features) - set(m.booster.feature_name()))
                    for m in state.all_models()
                )
            )
            if scores := os.environ.get(ENV_SCORES):
                state.snapshot = Snapshot.load(Path(scores))
                state.snapshot.policy = state.config.lists
            state.warm_up()
        except Exception as exc:  # any failure means: not ready, and say why
            state.problem = f"{type(exc).__name__}: {exc} (model registry {tracking_uri()})"
            log.error("retain service NOT READY — %s", state.problem)
            return state
        state.ready = True
        log.info(
            "retain service ready: models %s; snapshot %s",
            state.models.versions,
            state.snapshot.cutoff if state.snapshot else "none",
        )
        return state

    def all_models(self):
        return self.models.all()

    def warm_up(self) -> None:
        """One prediction and one explanation through every model before saying ready."""
        row = pd.DataFrame([{"customer_id": 0, **dict.fromkeys(self.features, 0.0)}])
        self.score(row, explain_rows=True)

    def score(self, frame: pd.DataFrame, explain_rows: bool) -> list[dict]:
        """Scores (and reasons) for feature rows with a ``customer_id`` column."""
        frame = frame.reset_index(drop=True)
        scores = score_frame(self.models, frame, self.config.lists.risk_bands)
        reasons = None
        if explain_rows:
            churn = self.models.churn
            products = products_from_json(churn.metadata.get("products", []))
            reasons = explain(
                churn.booster, frame, churn.metadata["features"], products=products, actionable=True
            )
        products = list(self.models.cross_sell)
        # plain lists per column, not itertuples: that builds a namedtuple class on every call,
        # which was half the CPU of a one-customer request
        ids, churn, band, upgrade = (
            scores[c].tolist() for c in ("customer_id", "p_churn", "risk_band", "p_upgrade")
        )
        propensity = {p: scores[f"propensity_{p}"].tolist() for p in products}
        return [
            {
                "customer_id": plain_id(ids[i]),
                "churn_probability": float(churn[i]),
                "risk_band": band[i],
                "propensities": {p: float(propensity[p][i]) for p in products},
                "upgrade_probability": float(upgrade[i]),
                "reasons": reasons.records(i) if reasons is not None else None,
            }
            for i in range(len(scores))
        ]


def _feature_union(models: ModelSet) -> list[str]:
    names: list[str] = []
    for m in [models.churn, *models.cross_sell.values(), models.upgrade]:
        names += [f for f in m.metadata["features"] if f not in names]
    return names


def plain_id(value):
    """An id from a frame as a JSON value: numpy integers become int, strings stay strings."""
    return value.item() if hasattr(value, "item") else value
