"""The typed, frozen configuration of a bank: every definition of docs/design.md §5, §11 and §12.

One object, :class:`BankConfig`, built once by the CLI from ``retain.toml`` (see
``retain/config.py``) and passed down explicitly. Defaults are the synthetic bank's. Unknown
keys are errors that name the key. Nothing here does work at import time.

Products are not configured here: they come from the warehouse's ``products`` table
(:meth:`BankConfig.with_products`); the configuration may only give them display names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

KINDS = ("asset", "liability", "service")
LANGUAGES = ("zh", "en")
SPARK_SIZE = r"(?i)(\d+)([kmgtp]b?)?"  # spark.executor.memory's form; no unit: MB


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def config_problems(error: ValidationError, prefix: tuple[str, ...] = ()) -> list[str]:
    """Each problem of a configuration as ``key.path: what is wrong`` (unknown keys named)."""
    problems = []
    for item in error.errors():
        key = ".".join([*prefix, *(str(part) for part in item["loc"])]) or "(top level)"
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}")
    return problems


class Names(Frozen):
    """Display names of one thing in the bank's languages; a missing one falls back to the code."""

    zh: str | None = None
    en: str | None = None


class Product(Frozen):
    """One product of the bank's catalogue, as the ``products`` table lists it.

    ``kind`` is seen from the customer: ``asset`` products hold the customer's money and count
    towards AUM, ``liability`` products are loans and cards, ``service`` products earn fees.
    """

    product: str = Field(min_length=1)
    kind: Literal["asset", "liability", "service"]
    margin_rate: float = Field(default=0.0, ge=0)
    fee_per_year: float = Field(default=0.0, ge=0)
    names: Names = Names()

    def label(self, lang: str) -> str:
        return getattr(self.names, lang, None) or self.product


class Tier(Frozen):
    """A tier holds customers whose last-month AUM is at least ``min_aum`` (and below the next)."""

    name: str = Field(min_length=1)
    min_aum: float = Field(ge=0)
    names: Names = Names()

    def label(self, lang: str) -> str:
        return getattr(self.names, lang, None) or self.name


DEFAULT_TIERS = (
    Tier(name="non_core", min_aum=0, names=Names(zh="普通客户", en="Non-core")),
    Tier(name="core", min_aum=10_000, names=Names(zh="核心客户", en="Core")),
    Tier(name="gold", min_aum=100_000, names=Names(zh="金卡客户", en="Gold")),
    Tier(name="platinum", min_aum=300_000, names=Names(zh="白金客户", en="Platinum")),
    Tier(name="black_gold", min_aum=1_000_000, names=Names(zh="黑金客户", en="Black gold")),
    Tier(name="diamond", min_aum=6_000_000, names=Names(zh="钻石客户", en="Diamond")),
)


class TierLadder(Frozen):
    """Tiers by last-month AUM, lowest first; the first starts at 0."""

    tiers: tuple[Tier, ...] = DEFAULT_TIERS

    @model_validator(mode="after")
    def _ordered(self) -> TierLadder:
        if len(self.tiers) < 2:
            raise ValueError("tiers: a ladder needs at least two tiers")
        if self.tiers[0].min_aum != 0:
            raise ValueError(f"tiers: the lowest tier must start at 0, not {self.tiers[0].min_aum}")
        bounds = [t.min_aum for t in self.tiers]
        if any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
            raise ValueError(f"tiers: min_aum must increase strictly, got {bounds}")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tiers: names must be unique, got {names}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    @property
    def bounds(self) -> tuple[float, ...]:
        """Lower bounds of every tier but the first: ``names[i]`` holds [bounds[i-1], bounds[i])."""
        return tuple(t.min_aum for t in self.tiers[1:])

    def label(self, name: str, lang: str) -> str:
        for tier in self.tiers:
            if tier.name == name:
                return tier.label(lang)
        return name


class ChurnDefinition(Frozen):
    """Who can churn and what counts as churn (docs/design.md §5).

    Eligible at cutoff c: open at least ``min_tenure_months``, 3-month average AUM at least
    ``min_aum``, and not already leaving (AUM in month c at least ``leaving_ratio`` of the
    average of the three months before). Churned within ``horizon_months``: AUM at the end of
    the horizon below ``attrition_ratio`` of the 3-month average up to c (every asset account
    closed gives AUM 0, so closures are included).
    """

    horizon_months: int = Field(default=3, ge=1, le=12)
    min_tenure_months: int = Field(default=3, ge=0)
    min_aum: float = Field(default=10_000.0, ge=0)
    leaving_ratio: float = Field(default=0.5, gt=0, lt=1)
    attrition_ratio: float = Field(default=0.3, gt=0, lt=1)

    def describe(self) -> str:
        """The label in words, for model cards and run records."""
        return (
            f"AUM at the end of the {self.horizon_months}-month horizon below "
            f"{self.attrition_ratio:.0%} of the 3-month average up to the cutoff, among "
            f"customers open at least {self.min_tenure_months} months with a 3-month average "
            f"AUM of at least {self.min_aum:,.0f} and not already leaving (AUM this month at "
            f"least {self.leaving_ratio:.0%} of the three months before)"
        )


class RiskBands(Frozen):
    """Calibrated churn probability → band: high from ``high``, medium from ``medium``."""

    high: float = Field(default=0.20, gt=0, lt=1)
    medium: float = Field(default=0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium >= self.high:
            raise ValueError(f"lists.risk_bands: medium ({self.medium}) must be below high")
        return self


class ListPolicy(Frozen):
    """Who is listed and how many (docs/design.md §12)."""

    risk_bands: RiskBands = RiskBands()
    min_risk: float = Field(default=0.05, ge=0, lt=1)
    control_share: float = Field(default=0.10, ge=0, lt=1)
    explore_share: float = Field(default=0.10, ge=0, lt=1)
    # risk: rank by expected loss; uplift: by saved value (the uplift champion's effect ×
    # contribution − call cost; never a customer a call does not help); auto: uplift once an
    # uplift champion exists
    ranking: Literal["risk", "uplift", "auto"] = "auto"
    call_cost: float = Field(default=0.0, ge=0)
    outlet_capacity: int | None = Field(default=None, ge=1)
    growth_capacity: int = Field(default=30, ge=0)
    explain_above: float = Field(default=0.0, ge=0, le=1)


class OfferPolicy(Frozen):
    """Which product kinds a retention row may offer, and which are growth offers; a product
    is offered only to a customer at least ``min_lift`` times as likely to take it as the
    month's average customer (1: no less likely than average; 0: whatever the chance)."""

    retention_kinds: tuple[Literal["asset", "liability", "service"], ...] = ("asset",)
    growth_kinds: tuple[Literal["asset", "liability", "service"], ...] = (
        "asset",
        "liability",
        "service",
    )
    min_lift: float = Field(default=1.0, ge=0)


class MonitoringPolicy(Frozen):
    """How ``retain monitor`` bins, compares and alarms (docs/design.md §13).

    PSI uses ``bins`` quantile bins of the reference, merged until each holds at least
    ``min_bin_count`` reference rows; a PSI of ``watch`` or more is a watch, ``act`` or more an
    act-level alert. Segments (columns such as tier and branch) with fewer than
    ``min_group_size`` customers on either side are reported as too small, never alarmed. An
    AUC (estimated or realised) below the model's test AUC by ``auc_drop_watch`` /
    ``auc_drop_act`` or more, and by more than its sampling error, is a watch / act.
    """

    bins: int = Field(default=10, ge=2, le=100)
    min_bin_count: int = Field(default=20, ge=1)
    min_group_size: int = Field(default=500, ge=1)
    watch: float = Field(default=0.1, gt=0)
    act: float = Field(default=0.25, gt=0)
    segments: tuple[str, ...] = ("tier", "branch_id")
    auc_drop_watch: float = Field(default=0.03, gt=0, lt=1)
    auc_drop_act: float = Field(default=0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringPolicy:
        if self.watch >= self.act:
            raise ValueError(f"monitoring: watch ({self.watch}) must be below act ({self.act})")
        if self.auc_drop_watch >= self.auc_drop_act:
            raise ValueError(
                f"monitoring: auc_drop_watch ({self.auc_drop_watch}) must be below "
                f"auc_drop_act ({self.auc_drop_act})"
            )
        return self


class WarehouseConfig(Frozen):
    """Where the tables live: a directory of parquet files, or a database URL."""

    location: str = "data/warehouse"
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[2]"
    # Spark heap: the driver's in local mode, each executor's else (Spark's sizes: 512m, 4g)
    spark_memory: str = "4g"
    # cores per executor; None: Spark's default (a standalone executor takes a worker's cores)
    spark_cores: int | None = Field(default=None, ge=1)
    # a standalone master's web UI, whose /json/ the fit check reads before the session starts;
    # None: http://<master host>:8080
    spark_master_ui: str | None = None
    # seconds a cluster session may take to get its first executor before retain gives up
    spark_executor_wait: float = Field(default=30, gt=0)

    @field_validator("spark_memory")
    @classmethod
    def _spark_size(cls, value: str) -> str:
        if not re.fullmatch(SPARK_SIZE, value.strip()):
            raise ValueError(
                f"{value!r} is not a Spark size: a whole number with k, m, g or t (512m, 4g)"
            )
        return value.strip()


class ServiceConfig(Frozen):
    """What `retain serve` serves from: the scored snapshot, the keys, the audit log, the
    outcome store (a SQLite file or a ``postgres://`` URL), the RM page's session store — and
    how many workers, and how long a page session lasts."""

    scores: str | None = "data/scores"
    keys: str = "data/keys.json"
    audit_log: str | None = None  # default: audit.log beside the keys file
    outcomes: str = "data/outcomes.db"
    sessions: str | None = None  # the page's sessions (SQLite); default: beside the keys file
    workers: int = Field(default=2, ge=1, le=64)
    # a page session ends after this long without a request, and this long after login
    session_idle_minutes: float = Field(default=30, gt=0, le=24 * 60)
    session_hours: float = Field(default=8, gt=0, le=7 * 24)

    @property
    def audit_path(self) -> str:
        return self.audit_log or str(Path(self.keys).parent / "audit.log")

    @property
    def sessions_path(self) -> str:
        return self.sessions or str(Path(self.keys).parent / "sessions.db")


class BankConfig(Frozen):
    """Definitions shared by features, labels, training, lists and the API."""

    name: str = "synthetic bank"
    languages: tuple[Literal["zh", "en"], ...] = LANGUAGES
    language: Literal["zh", "en"] = "zh"
    time_zone: str = "Asia/Shanghai"
    tiers: TierLadder = TierLadder()
    churn: ChurnDefinition = ChurnDefinition()
    lists: ListPolicy = ListPolicy()
    offers: OfferPolicy = OfferPolicy()
    warehouse: WarehouseConfig = WarehouseConfig()
    monitoring: MonitoringPolicy = MonitoringPolicy()
    service: ServiceConfig = ServiceConfig()
    product_labels: dict[str, Names] = Field(default_factory=dict)
    products: tuple[Product, ...] = ()

    @field_validator("tiers", mode="before")
    @classmethod
    def _ladder_from_list(cls, value):
        """``[[tiers]]`` in TOML is a list of tiers: the ladder itself."""
        return {"tiers": value} if isinstance(value, list | tuple) else value

    @model_validator(mode="after")
    def _language_known(self) -> BankConfig:
        if self.language not in self.languages:
            raise ValueError(f"language {self.language!r} is not one of languages {self.languages}")
        return self

    def with_overrides(self, **sections: dict | object) -> BankConfig:
        """This configuration with a command's options applied, validated like the file:
        ``with_overrides(warehouse={"engine": "spark"}, language="en")``; None values are
        options not given. Raises ``ValidationError`` naming the key."""
        data = self.model_dump()
        for section, value in sections.items():
            if isinstance(value, dict):
                data[section] = {
                    **data[section],
                    **{k: v for k, v in value.items() if v is not None},
                }
            elif value is not None:
                data[section] = value
        return BankConfig.model_validate(data)

    def with_products(self, products: tuple[Product, ...] | list[Product]) -> BankConfig:
        """This configuration with the warehouse's catalogue; configured names win over the
        table's, and a product without any name keeps its code."""
        named = []
        for product in products:
            override = self.product_labels.get(product.product)
            if override is not None:
                names = Names(
                    zh=override.zh or product.names.zh, en=override.en or product.names.en
                )
                product = product.model_copy(update={"names": names})
            named.append(product)
        return self.model_copy(update={"products": tuple(named)})

    def _require_products(self) -> tuple[Product, ...]:
        if not self.products:
            raise ValueError(
                "the product catalogue is not resolved: read the warehouse's products table "
                "(BankConfig.with_products) before building features or lists"
            )
        return self.products

    @property
    def product_codes(self) -> tuple[str, ...]:
        return tuple(p.product for p in self._require_products())

    @property
    def asset_products(self) -> tuple[str, ...]:
        return tuple(p.product for p in self._require_products() if p.kind == "asset")

    def product(self, code: str) -> Product | None:
        return next((p for p in self.products if p.product == code), None)

    def product_label(self, code: str, lang: str) -> str:
        product = self.product(code)
        return product.label(lang) if product else code
