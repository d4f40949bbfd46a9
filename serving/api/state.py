"""What the API and the RM page serve from: verified champion models, the scored snapshot,
keys and the audit log.

Built once per worker at start-up from the configuration ``retain serve`` resolved
(``RETAIN_BANK_CONFIG``: the bank's definitions and its ``[service]`` section).
``ServingState.load`` never raises: a problem (registry unreachable, a model missing, a hash
mismatch, a broken snapshot, a snapshot scored by other model versions than the champions)
leaves ``ready`` False and ``problem`` naming it, so the service answers 503 on every data
route and ``/readyz`` stays unready — it never serves a partial or unverified set of models,
nor a month whose numbers those models did not make.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from features.config import BankConfig
from features.products import products_from_json
from features.targets import model_versions
from models.registry import tracking_uri, use_store
from serving.answer import answer, live_answer
from serving.api.auth import AuditLog, KeyRing
from serving.api.schemas import nullable_features
from serving.champions import ModelSet, load_champions
from serving.explain import explain
from serving.lists import GROWTH, RETENTION, id_text, stored_list
from serving.score import score_frame, with_language

log = logging.getLogger("retain.service")

# the resolved configuration as JSON, set by `retain serve` (the front door loads the file)
ENV_CONFIG = "RETAIN_BANK_CONFIG"


class SnapshotMismatch(ValueError):
    """The snapshot was scored by other model versions than the service loaded."""


@dataclass
class Snapshot:
    """A `retain score` output directory: the month's answer per customer (``scores``), the
    features behind it, the RM table, and each customer's past — 12 months of AUM and
    contribution (``history``) and of warehouse contacts (``contacts``, newest first) — all
    indexed by customer_id. A snapshot written before history and contacts were has none."""

    folder: Path
    cutoff: str
    features: pd.DataFrame
    scores: pd.DataFrame
    rms: pd.DataFrame
    versions: dict[str, str]
    history: pd.DataFrame = field(default_factory=lambda: _empty(HISTORY))
    contacts: pd.DataFrame = field(default_factory=lambda: _empty(CONTACTS))

    @classmethod
    def load(cls, folder: Path) -> Snapshot:
        folder = Path(folder)
        features = pd.read_parquet(folder / "features.parquet").set_index("customer_id")
        scores = pd.read_parquet(folder / "scores.parquet").set_index("customer_id")
        rms = pd.read_parquet(folder / "rms.parquet")
        versions = model_versions(scores.columns, lambda c: scores[c].iloc[0])
        cutoff = pd.Timestamp(features["cutoff"].iloc[0]).date().isoformat()
        past = {
            name: _by_customer(folder / f"{name}.parquet", columns, order)
            for name, columns, order in (
                ("history", HISTORY, ("month", True)),
                ("contacts", CONTACTS, ("ts", False)),
            )
        }
        return cls(folder, cutoff, features, scores, rms, versions, **past)

    def check_versions(self, loaded: dict[str, str]) -> None:
        """Raise naming every model whose version differs between this snapshot and the
        models loaded."""
        names = sorted(set(self.versions) | set(loaded))
        differ = [
            f"{n} v{self.versions.get(n, '-')} in the snapshot, v{loaded.get(n, '-')} loaded"
            for n in names
            if self.versions.get(n) != loaded.get(n)
        ]
        if differ:
            raise SnapshotMismatch(
                f"the snapshot {self.folder} ({self.cutoff}) was scored by other model versions "
                f"than the champions loaded: {'; '.join(differ)}. Score the month again with "
                "these champions (retain score) or serve the versions that scored it"
            )

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

    def owner(self, key) -> str | None:
        """The RM who looks after a customer the snapshot holds, as of the cutoff."""
        rm = self.rm_ids.at[key]
        return None if pd.isna(rm) else str(rm)

    @cached_property
    def rm_ids(self) -> pd.Series:
        """Each customer's RM as text, as the bank writes its ids."""
        return id_text(self.scores["rm_id"])

    def rm_name(self, rm_id: str | None) -> str | None:
        """The RM's name as the warehouse's ``rms`` table gives it (None when not known)."""
        return self.rm_names.get(rm_id)

    @cached_property
    def rm_names(self) -> dict[str, str]:
        """Every RM's name by id as text (none for a snapshot written without names)."""
        if "name" not in self.rms:
            return {}
        known = self.rms[self.rms["name"].notna()]
        return dict(zip(id_text(known["rm_id"]), known["name"].astype(str), strict=True))

    def history_of(self, key) -> pd.DataFrame:
        """A customer's months (``month``, ``aum``, ``contribution``), oldest first."""
        return _rows(self.history, key)

    def contacts_of(self, key) -> pd.DataFrame:
        """A customer's warehouse contacts of the last 12 months, newest first."""
        return _rows(self.contacts, key)

    @cached_property
    def last_contact(self) -> pd.DataFrame:
        """Each contacted customer's latest warehouse contact (one row per customer)."""
        return self.contacts[~self.contacts.index.duplicated(keep="first")]

    def book(self, rm_id: str) -> pd.Index:
        return self.scores.index[(self.rm_ids == rm_id).fillna(False).to_numpy()]

    def answers(self, keys: list, asked: list, products: list[str], explain_rows=True) -> list:
        """The month's answer for each snapshot id in ``keys`` (reported as ``asked``)."""
        rows = self.scores.loc[keys].to_dict("records")
        return [
            answer(plain_id(a), row, products, explain_rows)
            for a, row in zip(asked, rows, strict=True)
        ]

    def _list(self, list_id: str, kind: str, lang: str, k: int | None) -> pd.DataFrame:
        rows = self.scores[self.scores["list_id"] == list_id].reset_index()
        return stored_list(with_language(rows, lang), list_id, kind, k)

    def retention_list(self, list_id: str, k: int | None, lang: str) -> pd.DataFrame:
        """The retention list exactly as ``retain score`` cut it (at most ``k`` rows)."""
        return self._list(list_id, RETENTION, lang, k)

    def growth_list(self, list_id: str, lang: str) -> pd.DataFrame:
        return self._list(list_id, GROWTH, lang, None)


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
    def load(cls, config: BankConfig | None = None) -> ServingState:
        """The worker's state from ``config`` (default: ``RETAIN_BANK_CONFIG``)."""
        try:
            if config is None:
                payload = os.environ.get(ENV_CONFIG)
                config = BankConfig.model_validate_json(payload) if payload else BankConfig()
        except ValueError as exc:
            state = cls(problem=f"the configuration is not valid: {exc}")
            log.error("retain service NOT READY — %s", state.problem)
            return state
        service = config.service
        state = cls(keys=KeyRing(Path(service.keys)), audit=AuditLog(Path(service.audit_path)))
        state.config = config
        try:
            use_store()
            state.models = load_champions(ranking=config.lists.ranking)
            state.features = _feature_union(state.models)
            state.nullable = _nullable(state.models, state.features)
            if service.scores:
                state.snapshot = Snapshot.load(Path(service.scores))
                state.snapshot.check_versions(state.models.versions)
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

    @property
    def products(self) -> list[str]:
        """The products the cross-sell models score."""
        return list(self.models.cross_sell)

    def product_catalogue(self):
        """The products the models were trained with (names in the bank's languages)."""
        return products_from_json(self.models.churn.metadata.get("products", []))

    def warm_up(self) -> None:
        """One prediction and one explanation through every model before saying ready."""
        row = pd.DataFrame([{"customer_id": 0, **dict.fromkeys(self.features, 0.0)}])
        self.score_live(row, explain_rows=True)

    def score_live(self, frame: pd.DataFrame, explain_rows: bool) -> list[dict]:
        """Answers for feature rows a CRM sent (a ``customer_id`` column and the features):
        the models' scores and reasons only."""
        frame = frame.reset_index(drop=True)
        scores = score_frame(self.models, frame, self.config.lists.risk_bands)
        if self.models.uplift is not None:
            scores["uplift"] = self.models.uplift.effect(frame)
        reasons = None
        if explain_rows:
            churn = self.models.churn
            reasons = explain(
                churn.booster,
                frame,
                churn.metadata["features"],
                products=self.product_catalogue(),
                actionable=True,
            )
        rows = scores.to_dict("records")
        return [
            live_answer(
                plain_id(row["customer_id"]),
                row,
                self.products,
                reasons.records(i) if reasons is not None else None,
            )
            for i, row in enumerate(rows)
        ]


def _feature_union(models: ModelSet) -> list[str]:
    names: list[str] = []
    for m in models.all():
        names += [f for f in m.metadata["features"] if f not in names]
    return names


def _nullable(models: ModelSet, features: list[str]) -> set[str]:
    """Features every model treats a missing value of as missing (or does not use)."""
    return set.intersection(
        *(
            nullable_features(m.booster) | (set(features) - set(m.booster.feature_name()))
            for m in models.all()
        )
    )


HISTORY = ("month", "aum", "contribution")
CONTACTS = ("ts", "kind", "rm_id", "outcome", "interaction_id")


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns), index=pd.Index([], name="customer_id"))


def _by_customer(path: Path, columns: tuple[str, ...], order: tuple[str, bool]) -> pd.DataFrame:
    """A per-customer table of the snapshot, sorted by customer (then ``order``) so one
    customer's rows are found by bisection; empty when the snapshot has none."""
    if not path.exists():
        return _empty(columns)
    frame = pd.read_parquet(path)
    frame = frame.sort_values(["customer_id", order[0]], ascending=[True, order[1]])
    return frame.set_index("customer_id")[list(columns)]


def _rows(frame: pd.DataFrame, key) -> pd.DataFrame:
    """The rows of ``key`` in a frame sorted by its index."""
    index = frame.index
    if not len(index):
        return frame
    try:
        start, stop = index.searchsorted(key, "left"), index.searchsorted(key, "right")
    except TypeError:  # an id of another kind than the bank's: no rows
        return frame.iloc[:0]
    return frame.iloc[start:stop]


def plain_id(value):
    """An id from a frame as a JSON value: numpy integers become int, strings stay strings."""
    return value.item() if hasattr(value, "item") else value
