"""What the synthetic bank generates: its size, seed, ids and product catalogue.

A product of the synthetic catalogue is a code, names, a kind and margins — what the bank's
``products`` table lists — plus a *behaviour*: the archetype whose shape the generator follows
(who holds it, how it is bought and closed, whether it matures, holds AUM or carries a loan
balance). Any number of products may share a behaviour; each then gets its own propensity
offset, so two term deposits are not twins. ``retain.toml`` may give the whole catalogue in its
``[synthetic]`` section (:func:`synth_config_from_toml`); the default is the 9-product bank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from features.config import Frozen, Names, Product, config_problems


@dataclass(frozen=True)
class Propensity:
    """Logit of holding the product, linear in wealth, age and risk profile.

    ``intercept + wealth·(log10 AUM − 4.5) + age·(age − 44)/10 + risk·(risk − 3)
    + age_squared·((age − 38)/10)²``; when ``min_log10_wealth`` is set, the product is out of
    reach (logit −30) below that wealth.
    """

    intercept: float
    wealth: float = 0.0
    age: float = 0.0
    risk: float = 0.0
    age_squared: float = 0.0
    min_log10_wealth: float | None = None


@dataclass(frozen=True)
class Behaviour:
    """How the generator treats the products of one archetype.

    ``share_weight`` > 0 makes the product hold a share of the customer's AUM (an asset);
    ``terms`` (months, with probabilities ``term_p``) make it mature; ``balance_range`` gives a
    loan or card balance, drawn at the start and then multiplied by ``balance_monthly_factor``
    each month (``None``: drawn afresh every month, as a card's). ``closes_on_exit``: shut when
    the customer leaves (loans are still owed). ``purchase_boost`` is added to the purchase
    logit (a premium service is opened when wealth crosses its threshold).
    """

    name: str
    kind: Literal["asset", "liability", "service"]
    propensity: Propensity
    share_weight: float = 0.0
    monthly_close: float = 0.0
    terms: tuple[int, ...] = ()
    term_p: tuple[float, ...] = ()
    balance_range: tuple[float, float] | None = None
    balance_monthly_factor: float | None = None
    closes_on_exit: bool = True
    purchase_boost: float = 0.0

    @property
    def holds_aum(self) -> bool:
        return self.share_weight > 0

    @property
    def matures(self) -> bool:
        return bool(self.terms)


PREMIUM_MIN_AUM = 10**6.6  # about 4 million: where private banking starts
PREMIUM_RAMP = 0.18  # log10 wealth above the threshold at which the logit reaches 2.0

BEHAVIOURS: dict[str, Behaviour] = {
    b.name: b
    for b in (
        Behaviour("demand", "asset", Propensity(30.0), share_weight=1.0),
        Behaviour(
            "term_deposit",
            "asset",
            Propensity(-0.6, wealth=0.5, age=0.35, risk=-0.35),
            share_weight=1.4,
            monthly_close=0.004,
            terms=(3, 6, 12, 24, 36),
            term_p=(0.15, 0.25, 0.35, 0.15, 0.10),
        ),  # fmt: skip
        Behaviour(
            "managed_investment",
            "asset",
            Propensity(-2.0, wealth=1.3, age=0.1, risk=0.15),
            share_weight=2.0,
            monthly_close=0.004,
            terms=(3, 6, 12),
            term_p=(0.3, 0.4, 0.3),
        ),  # fmt: skip
        Behaviour(
            "fund",
            "asset",
            Propensity(-2.4, wealth=0.6, age=-0.2, risk=0.55),
            share_weight=0.8,
            monthly_close=0.008,
        ),  # fmt: skip
        Behaviour(
            "insurance",
            "asset",
            Propensity(-1.8, wealth=0.4, age=0.25),
            share_weight=0.6,
            monthly_close=0.003,
        ),  # fmt: skip
        Behaviour(
            "card",
            "service",
            Propensity(-0.2, wealth=0.3, age=-0.3),
            monthly_close=0.006,
            balance_range=(0.0, 15_000.0),
        ),  # fmt: skip
        Behaviour(
            "consumer_loan",
            "liability",
            Propensity(-2.4, wealth=-0.2, age=-0.25),
            monthly_close=0.03,
            balance_range=(10_000.0, 200_000.0),
            balance_monthly_factor=0.97,
            closes_on_exit=False,
        ),  # fmt: skip
        Behaviour(
            "mortgage",
            "liability",
            Propensity(-1.9, wealth=0.2, age_squared=-0.4),
            monthly_close=0.004,
            balance_range=(200_000.0, 2_500_000.0),
            balance_monthly_factor=0.996,
            closes_on_exit=False,
        ),  # fmt: skip
        Behaviour(
            "premium_service",
            "service",
            Propensity(
                2.0 - 3.0 * (math.log10(PREMIUM_MIN_AUM) + PREMIUM_RAMP - 4.5),
                wealth=3.0,
                min_log10_wealth=math.log10(PREMIUM_MIN_AUM),
            ),
            purchase_boost=3.0,
        ),
    )
}
DEMAND = "demand"


class SynthProduct(Frozen):
    """One product of the synthetic bank: what its ``products`` row says, and its behaviour.

    ``kind`` defaults to the behaviour's; a product holds AUM exactly when its behaviour does,
    so an asset behaviour needs kind ``asset`` and the others must not have it. ``min_aum``
    (premium_service only) is the AUM from which the service is opened.
    """

    product: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    behaviour: str
    kind: Literal["asset", "liability", "service"]
    margin_rate: float = Field(default=0.0, ge=0)
    fee_per_year: float = Field(default=0.0, ge=0)
    names: Names = Names()
    min_aum: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _kind_of_behaviour(cls, data):
        if not isinstance(data, dict) or "behaviour" not in data:
            return data
        behaviour = BEHAVIOURS.get(data["behaviour"])
        if behaviour is None:
            raise ValueError(
                f"product {data.get('product')!r}: unknown behaviour {data['behaviour']!r}; "
                f"choose one of {', '.join(BEHAVIOURS)}"
            )
        return data if data.get("kind") is not None else {**data, "kind": behaviour.kind}

    @model_validator(mode="after")
    def _fits_behaviour(self) -> SynthProduct:
        behaviour = BEHAVIOURS[self.behaviour]
        if (self.kind == "asset") != behaviour.holds_aum:
            assets = ", ".join(name for name, b in BEHAVIOURS.items() if b.holds_aum)
            raise ValueError(
                f"product {self.product!r}: kind {self.kind!r} does not fit behaviour "
                f"{self.behaviour!r} (the asset behaviours are {assets}, and only they may be "
                "kind 'asset')"
            )
        if self.min_aum is not None and behaviour.propensity.min_log10_wealth is None:
            raise ValueError(
                f"product {self.product!r}: min_aum is only for a behaviour opened from a "
                f"wealth threshold (premium_service), not {self.behaviour!r}"
            )
        return self

    @property
    def rules(self) -> Behaviour:
        return BEHAVIOURS[self.behaviour]


def _product(code, behaviour, kind, zh, en, margin_rate=0.0, fee_per_year=0.0) -> SynthProduct:
    return SynthProduct(product=code, behaviour=behaviour, kind=kind, margin_rate=margin_rate,
                        fee_per_year=fee_per_year, names=Names(zh=zh, en=en))  # fmt: skip


DEFAULT_CATALOGUE: tuple[SynthProduct, ...] = (
    _product("demand_deposit", "demand", "asset", "活期存款", "Demand deposit", 0.015),
    _product("time_deposit", "term_deposit", "asset", "定期存款", "Time deposit", 0.008),
    _product(
        "wealth_management", "managed_investment", "asset", "理财", "Wealth management", 0.006
    ),  # fmt: skip
    _product("mutual_fund", "fund", "asset", "基金", "Mutual fund", 0.010),
    _product("insurance", "insurance", "asset", "保险", "Insurance", 0.020),
    _product("credit_card", "card", "service", "信用卡", "Credit card", 0.060, 300.0),
    _product("consumer_loan", "consumer_loan", "liability", "消费贷款", "Consumer loan", 0.035),
    _product("mortgage", "mortgage", "liability", "住房贷款", "Mortgage", 0.012),
    _product(
        "private_banking_service",
        "premium_service",
        "service",
        "私人银行服务",
        "Private banking service",
        0.0,
        5000.0,
    ),  # fmt: skip
)


class RegimeChange(Frozen):
    """A change of regime from the month-end ``start`` on, so monitoring can be proven on a
    shifted bank (``synthetic.dynamics`` and ``synthetic.events`` apply it).

    - ``outflow_factor``: every payment or transfer *to another bank* (the counterparty
      ``other_bank``, direction ``out``) is that many times larger from ``start`` on. Only the
      transactions change: balances, exits and the truth do not — the money is not backed by a
      fall in AUM (think of a payments scheme that makes paying other banks routine). So the
      outflow features shift while who leaves does not: P(churn | features) changes (a concept
      shift, which an estimate from calibrated probabilities — CBPE — cannot see). The churn
      score moves little: a model learns that savings *draining* to other banks, not routine
      payments, announce an exit (docs/synthetic_regime.md has the measured figures).
    - ``outflow_start_factor``: customers start moving their savings to other banks (the
      ``outflow_other_bank`` driver: 10–22% of AUM a month to other banks for three months,
      then a higher hazard) that many times as often. Here the mechanism is unchanged and only
      how many customers are in it changes: a covariate shift in the sense CBPE assumes —
      P(churn | features) holds, so a calibrated model stays calibrated while the outflow
      features, the churn score and the realised churn rate all rise together.
    - ``withdrawn``: product codes withdrawn from ``start``: nobody opens one from then on;
      holdings run off by kind — a maturing product is not rolled over (it closes at its next
      maturity, its money spread over the customer's other assets), a loan is
      repaid on its schedule (it is owed), any other product is closed by
      ``WITHDRAWN_MONTHLY_CLOSE`` of its holders a month (funds redeemed, cards and services
      cancelled). The churn hazard's formula is unchanged; holdings change what it and the
      purchases see (products held, deposits maturing), so the later months are a new draw.

    Rows of the warehouse dated before ``start`` are identical to the bank without the regime
    (same seed), ids included, except dates that lie after ``start`` (a complaint's
    resolution, an RM assignment's end); ``truth`` rows look three months ahead, so they are
    identical up to ``start`` − 3 months, but for the exit date of customers leaving after
    ``start``.
    """

    start: date
    outflow_factor: float = Field(default=1.0, gt=0)
    withdrawn: tuple[str, ...] = ()
    outflow_start_factor: float = Field(default=1.0, gt=0)

    @field_validator("start")
    @classmethod
    def _start_month_end(cls, value: date) -> date:
        if pd.Timestamp(value) != pd.Timestamp(value) + pd.offsets.MonthEnd(0):
            raise ValueError(
                f"start must be a month-end date (the first month affected), got {value}"
            )
        return value

    @field_validator("withdrawn")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"withdrawn: codes given twice: {', '.join(repeated)}")
        return value


WITHDRAWN_MONTHLY_CLOSE = 0.15  # share of a withdrawn product's holders that close it a month
HISTORY_MONTHS = 3  # months of AUM a campaign's list needs before its first cutoff

EffectStructure = Literal["heterogeneous", "follows_risk", "sleeping_dogs_among_risky"]
CampaignPolicy = Literal["rule_of_thumb", "risk", "random"]


def _month_end_or_none(value: date | None, name: str) -> date | None:
    if value is not None and pd.Timestamp(value) != pd.Timestamp(value) + pd.offsets.MonthEnd(0):
        raise ValueError(f"{name} must be a month-end date (a cutoff), got {value}")
    return value


class Campaign(Frozen):
    """What a retention call does, and the bank's earlier campaigns (``synthetic.campaign``,
    docs/synthetic_campaign.md).

    The call effect (always, once this section exists): each customer-month has a response
    type from its drivers, and the truth gains ``p_churn_3m_called``. Under ``structure``
    "heterogeneous" a reached *persuadable* (a complaint, a deposit maturing, neglect, part of
    the outflows) has each monthly exit hazard of the horizon cut by ``persuadable_effect`` ×
    the calling RM's skill; a *lost cause* (salary gone, money moved to own accounts
    elsewhere, a high hidden term) and a *sure thing* do not change; a *sleeping dog* (a
    dormant customer with no driver: the ``sleeping_dog_share`` of customers with the least
    card and account activity) gets ``sleeping_dog_hazard`` added to each month's hazard.
    "follows_risk": every customer is persuadable (the effect follows the risk);
    "sleeping_dogs_among_risky": customers moving savings to other banks are sleeping dogs.
    ``reach`` of assigned calls reach the customer (intention to treat); RM skill is lognormal
    with mean 1 and log-s.d. ``skill_spread``.

    The history (from ``start``, a cutoff, to ``end``, by default the month before the
    window's last): at each cutoff every RM's (and, for customers nobody looks after, every
    outlet's) list follows ``policy`` within capacity; ``control_share`` of those within the
    cut are held back at random; ``exploration_share`` of the list's slots go to customers
    drawn at random below the cut (each with probability at most
    ``max_explore_probability``). A list's capacity is its RM's (``rms.capacity``; an outlet's:
    ``outlet_capacity``, else the median RM's) × ``capacity_share``: by default the campaign
    took half of it (with all of it, and a customer listed at most once a horizon, an RM would
    call the whole book every quarter and most lists would run dry).
    """

    structure: EffectStructure = "heterogeneous"
    persuadable_effect: float = Field(default=0.5, ge=0, le=1)
    sleeping_dog_hazard: float = Field(default=0.02, ge=0, lt=1)
    sleeping_dog_share: float = Field(default=0.05, ge=0, lt=1)
    persuadable_months: int = Field(default=2, ge=0, le=12)
    lost_cause_hidden: float = Field(default=1.5, gt=0, description="in s.d. of the hidden term")
    reach: float = Field(default=0.75, gt=0, le=1)
    skill_spread: float = Field(default=0.3, ge=0, le=2)
    start: date | None = None
    end: date | None = None
    policy: CampaignPolicy = "rule_of_thumb"
    control_share: float = Field(default=0.10, gt=0, lt=1)
    exploration_share: float = Field(default=0.10, ge=0, lt=1)
    max_explore_probability: float = Field(default=0.5, gt=0, lt=1)
    outlet_capacity: int | None = Field(default=None, gt=0)
    capacity_share: float = Field(default=0.5, gt=0, le=1)

    @field_validator("start")
    @classmethod
    def _start_month_end(cls, value: date | None) -> date | None:
        return _month_end_or_none(value, "start")

    @field_validator("end")
    @classmethod
    def _end_month_end(cls, value: date | None) -> date | None:
        return _month_end_or_none(value, "end")

    @model_validator(mode="after")
    def _end_needs_start(self) -> Campaign:
        if self.end is not None and (self.start is None or self.end < self.start):
            raise ValueError(f"end {self.end} needs a start on or before it (start {self.start})")
        return self


class SynthConfig(Frozen):
    """What to generate. ``hidden_sigma`` is the s.d. of the per-customer hidden churn term;
    ``ids="string"`` writes customer and event ids as zero-padded strings (``C0000000123``);
    ``regime`` shifts the bank from a month on (:class:`RegimeChange`); ``campaign`` gives
    calls an effect on churn and the bank a history of retention lists (:class:`Campaign`)."""

    customers: int = Field(default=20_000, ge=1)
    months: int = Field(default=24, ge=4, description="at least 3 months of history")
    end: date = date(2024, 12, 31)
    seed: int = Field(default=0, ge=0)
    hidden_sigma: float = Field(default=0.25, ge=0)
    ids: Literal["integer", "string"] = "integer"
    products: tuple[SynthProduct, ...] = DEFAULT_CATALOGUE
    regime: RegimeChange | None = None
    campaign: Campaign | None = None

    @field_validator("end")
    @classmethod
    def _month_end(cls, value: date) -> date:
        if pd.Timestamp(value) != pd.Timestamp(value) + pd.offsets.MonthEnd(0):
            raise ValueError(f"end must be a month-end date, got {value}")
        return value

    @model_validator(mode="after")
    def _one_demand_account(self) -> SynthConfig:
        codes = [p.product for p in self.products]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"products: codes must be unique, repeated: {', '.join(repeated)}")
        demand = [p.product for p in self.products if p.behaviour == DEMAND]
        if len(demand) != 1:
            raise ValueError(
                "products: exactly one product must have behaviour 'demand' (the account "
                f"everyone holds), got {len(demand)}: {demand}"
            )
        return self

    @model_validator(mode="after")
    def _regime_fits(self) -> SynthConfig:
        if self.regime is None:
            return self
        months = self.month_ends
        if pd.Timestamp(self.regime.start) not in months:
            raise ValueError(
                f"regime.start {self.regime.start} is outside the window "
                f"{months[0].date()}..{months[-1].date()}"
            )
        codes = {p.product: p for p in self.products}
        unknown = [c for c in self.regime.withdrawn if c not in codes]
        if unknown:
            raise ValueError(
                f"regime.withdrawn: unknown product code(s) {', '.join(unknown)}; "
                f"the catalogue has {', '.join(codes)}"
            )
        demand = [c for c in self.regime.withdrawn if codes[c].behaviour == DEMAND]
        if demand:
            raise ValueError(
                f"regime.withdrawn: {demand[0]} is the account everyone holds (behaviour "
                "'demand') and cannot be withdrawn"
            )
        return self

    @model_validator(mode="after")
    def _campaign_fits(self) -> SynthConfig:
        campaign = self.campaign
        if campaign is None or campaign.start is None:
            return self
        months = self.month_ends
        # the rule of thumb and the churn rule look 3 months back; calls fall in the month
        # after the cutoff, which must lie in the window
        first, last = months[min(HISTORY_MONTHS, len(months) - 1)], months[-2]
        for name in ("start", "end"):
            value = getattr(campaign, name)
            if value is not None and not first <= pd.Timestamp(value) <= last:
                raise ValueError(
                    f"campaign.{name} {value} is outside {first.date()}..{last.date()} (cutoffs "
                    f"with {HISTORY_MONTHS} months of history before them and a month after)"
                )
        return self

    @property
    def campaign_months(self) -> tuple[int, int] | None:
        """Window indices of the campaign's first and last cutoff, ``None`` without a history."""
        campaign = self.campaign
        if campaign is None or campaign.start is None:
            return None
        months = self.month_ends
        end = campaign.end or months[-2].date()
        return int(months.get_loc(pd.Timestamp(campaign.start))), int(
            months.get_loc(pd.Timestamp(end))
        )

    @property
    def regime_month(self) -> int | None:
        """Window index of the regime's first month, ``None`` without a regime."""
        if self.regime is None:
            return None
        return int(self.month_ends.get_loc(pd.Timestamp(self.regime.start)))

    @property
    def month_ends(self) -> pd.DatetimeIndex:
        return pd.date_range(end=pd.Timestamp(self.end), periods=self.months, freq="ME")


class SynthConfigError(ValueError):
    """A synthetic-bank configuration that cannot be used, with every problem named."""


def synth_config(payload: dict, where: str = "synthetic") -> SynthConfig:
    """Validate ``payload`` into a :class:`SynthConfig`; errors name each key under ``where``."""
    try:
        return SynthConfig.model_validate(payload)
    except ValidationError as exc:
        raise SynthConfigError("; ".join(config_problems(exc, (where,)))) from exc


def synth_config_from_toml(payload: dict, overrides: dict | None = None) -> SynthConfig:
    """The :class:`SynthConfig` of a parsed ``retain.toml``: its ``[synthetic]`` section
    (defaults when absent), with ``overrides`` (e.g. command-line options) winning — key by key
    within ``regime`` and ``campaign``. Unknown keys are errors that name the key."""
    section = payload.get("synthetic", {})
    if not isinstance(section, dict):
        raise SynthConfigError("synthetic: expected a table ([synthetic])")
    overrides = dict(overrides or {})
    tables = {name: overrides.pop(name, None) for name in ("regime", "campaign")}
    merged = {**section, **overrides}
    for name, given in tables.items():
        if not given:
            continue
        table = section.get(name, {})
        if not isinstance(table, dict):
            raise SynthConfigError(f"synthetic.{name}: expected a table ([synthetic.{name}])")
        merged[name] = {**table, **given}
    return synth_config(merged)


def as_products(catalogue: tuple[SynthProduct, ...]) -> tuple[Product, ...]:
    """The catalogue as the bank's ``products`` table describes it (no behaviours)."""
    return tuple(
        Product(product=p.product, kind=p.kind, margin_rate=p.margin_rate,
                fee_per_year=p.fee_per_year, names=p.names)
        for p in catalogue
    )  # fmt: skip
