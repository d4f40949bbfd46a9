"""The champion models, loaded and verified: churn, upgrade and one per cross-sell product.

What every scoring path starts from — ``retain score``, Spark workers and the API — so it
imports nothing but the model artifact and the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.tracking import MlflowClient

from features.targets import CHURN, UPGRADE, Target, cross_sell, from_model
from models.artifact import VerifiedModel, load_verified
from models.registry import CHAMPION, RegistryError
from models.uplift import UPLIFT, VerifiedUplift, load_uplift


@dataclass
class ModelSet:
    """The champion models, loaded and verified: churn, upgrade and one per cross-sell product
    — and the uplift champion when the lists rank by saved value."""

    churn: VerifiedModel
    upgrade: VerifiedModel
    cross_sell: dict[str, VerifiedModel] = field(default_factory=dict)
    uplift: VerifiedUplift | None = None

    def all(self) -> list[VerifiedModel]:
        """Churn, the cross-sell models in order, upgrade."""
        return [self.churn, *self.cross_sell.values(), self.upgrade]

    def targets(self) -> list[tuple[Target, VerifiedModel]]:
        """Each model with the target it predicts, in :meth:`all`'s order."""
        cross = [(cross_sell(p), m) for p, m in self.cross_sell.items()]
        return [(CHURN, self.churn), *cross, (UPGRADE, self.upgrade)]

    @property
    def versions(self) -> dict[str, str]:
        """Every model's version, the uplift model's included."""
        found = {m.name: m.version for m in self.all()}
        return found | ({self.uplift.name: self.uplift.version} if self.uplift else {})

    @classmethod
    def of(cls, models: list[VerifiedModel]) -> ModelSet:
        """A set from its models in any order (each named as its target's model)."""
        by_target = {from_model(m.name): m for m in models}
        products = sorted(t.product for t in by_target if t.kind == "cross_sell")
        cross = {p: by_target[cross_sell(p)] for p in products}
        return cls(by_target[CHURN], by_target[UPGRADE], cross)


def load_champions(alias: str = CHAMPION, ranking: str = "risk") -> ModelSet:
    """Load every model the scoring needs under ``alias``, or raise naming what is missing.

    Required: ``churn``, ``upgrade`` and every registered cross-sell model; the ``uplift``
    model too with ``ranking="uplift"``, when there is one with ``"auto"``."""
    names = sorted(m.name for m in MlflowClient().search_registered_models())
    missing = [t.model for t in (CHURN, UPGRADE) if t.model not in names]
    if missing:
        raise RegistryError(
            f"no registered model {', '.join(missing)} in the registry: train it "
            f"(retain train --task all) and promote it first"
        )
    wanted = [n for n in names if from_model(n) is not None]
    models = ModelSet.of([load_verified(n, alias) for n in wanted])
    if ranking == "uplift" or (ranking == "auto" and _has_alias(UPLIFT, alias, names)):
        models.uplift = load_uplift(alias)  # a champion that fails its checks is an error
    return models


def _has_alias(name: str, alias: str, names: list[str]) -> bool:
    if name not in names:
        return False
    aliases = MlflowClient().get_registered_model(name).aliases
    return alias in aliases
