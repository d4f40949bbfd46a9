"""How synthetic customers hold and buy products: the catalogue as arrays the simulation uses.

A product's propensity is a logit in wealth, age and risk profile, shaped by its behaviour
(``synthetic/config.py``). The same shape drives the holdings at the start of the window and
the monthly purchase hazard (plus products held, RM contact last month and a hidden
per-customer term), so purchases follow who the customer is. Products that share a behaviour
each get their own propensity offset, drawn from their position in the catalogue, so they
differ; a behaviour used once keeps its shape unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synthetic.config import DEMAND, SynthProduct

PURCHASE_OFFSET = -3.3
OFFSET_STREAM = 104_729  # seeds the per-position propensity offsets (independent of the seed)
OFFSET_SIGMA = 0.35
OUT_OF_REACH = -30.0


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Per-product arrays (one entry per product, in catalogue order) and masks."""

    codes: tuple[str, ...]
    asset: np.ndarray  # holds a share of AUM
    share_weight: np.ndarray
    monthly_close: np.ndarray
    closes_on_exit: np.ndarray
    purchase_boost: np.ndarray
    demand: int  # index of the account everyone holds
    maturing: tuple[int, ...]
    terms: dict[int, tuple[np.ndarray, np.ndarray]]  # index → (terms in months, probabilities)
    balance_ranges: dict[int, tuple[float, float]]  # loan / card balances at the start
    balance_factors: dict[int, float | None]  # monthly factor; None = drawn afresh each month
    amortises: np.ndarray  # a loan balance repaid month by month (owed: it cannot be closed)
    intercept: np.ndarray  # propensity coefficients, offsets included
    wealth: np.ndarray
    age: np.ndarray
    risk: np.ndarray
    age_squared: np.ndarray
    min_log10_wealth: np.ndarray  # -inf when always within reach

    @classmethod
    def of(cls, products: tuple[SynthProduct, ...]) -> Catalogue:
        rules = [p.rules for p in products]
        behaviours = [p.behaviour for p in products]
        offsets = np.zeros(len(products))
        for i, behaviour in enumerate(behaviours):
            sharing = behaviours.count(behaviour)
            if sharing > 1 and behaviour != DEMAND:
                draw = np.random.default_rng([OFFSET_STREAM, i]).normal(0.0, OFFSET_SIGMA)
                offsets[i] = draw - math.log(sharing)  # together about as common as one
        intercept = np.array([r.propensity.intercept for r in rules]) + offsets
        wealth = np.array([r.propensity.wealth for r in rules])
        threshold = np.full(len(products), -np.inf)
        for i, (product, rule) in enumerate(zip(products, rules, strict=True)):
            base = rule.propensity.min_log10_wealth
            if base is None:
                continue
            threshold[i] = base if product.min_aum is None else math.log10(product.min_aum)
            intercept[i] -= wealth[i] * (threshold[i] - base)  # same ramp from the new threshold
        return cls(
            codes=tuple(p.product for p in products),
            asset=np.array([r.holds_aum for r in rules]),
            share_weight=np.array([r.share_weight for r in rules]),
            monthly_close=np.array([r.monthly_close for r in rules]),
            closes_on_exit=np.array([r.closes_on_exit for r in rules]),
            purchase_boost=np.array([r.purchase_boost for r in rules]),
            demand=behaviours.index(DEMAND),
            maturing=tuple(i for i, r in enumerate(rules) if r.matures),
            terms={
                i: (np.array(r.terms), np.array(r.term_p)) for i, r in enumerate(rules) if r.matures
            },
            balance_ranges={
                i: r.balance_range for i, r in enumerate(rules) if r.balance_range is not None
            },
            balance_factors={
                i: r.balance_monthly_factor
                for i, r in enumerate(rules)
                if r.balance_range is not None
            },
            amortises=np.array([r.balance_monthly_factor is not None for r in rules]),
            intercept=intercept,
            wealth=wealth,
            age=np.array([r.propensity.age for r in rules]),
            risk=np.array([r.propensity.risk for r in rules]),
            age_squared=np.array([r.propensity.age_squared for r in rules]),
            min_log10_wealth=threshold,
        )

    def __len__(self) -> int:
        return len(self.codes)

    def propensity_logits(
        self, log10_wealth: np.ndarray, age: np.ndarray, risk: np.ndarray
    ) -> np.ndarray:
        """Logit of holding each product, shape (n, products)."""
        x = (log10_wealth - 4.5)[:, None]
        a = ((age - 44) / 10)[:, None]
        r = (risk.astype(float) - 3)[:, None]
        q = (((age - 38) / 10) ** 2)[:, None]
        logits = (
            self.intercept + self.wealth * x + self.age * a + self.risk * r + self.age_squared * q
        )
        return np.where(log10_wealth[:, None] >= self.min_log10_wealth, logits, OUT_OF_REACH)

    def draw_terms(self, rng: np.random.Generator, product: int, n: int) -> np.ndarray:
        terms, p = self.terms[product]
        return rng.choice(terms, n, p=p)
