"""Typed, frozen configuration: products, tier ladder and the definitions of DESIGN §5.

Built once by the CLI and passed down explicitly; nothing here does work at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Product:
    """One product of the bank's catalog.

    ``kind`` is seen from the customer: ``asset`` products hold the customer's money and count
    towards AUM, ``liability`` products are loans, ``service`` products earn fees.
    """

    product: str
    kind: str
    margin_rate: float
    fee_per_year: float = 0.0
    has_maturity: bool = False


DEFAULT_PRODUCTS: tuple[Product, ...] = (
    Product("demand_deposit", "asset", 0.015),
    Product("time_deposit", "asset", 0.008, has_maturity=True),
    Product("wealth_management", "asset", 0.006, has_maturity=True),
    Product("mutual_fund", "asset", 0.010),
    Product("insurance", "asset", 0.020),
    Product("credit_card", "service", 0.060, fee_per_year=300.0),
    Product("consumer_loan", "liability", 0.035),
    Product("mortgage", "liability", 0.012),
    Product("private_banking_service", "service", 0.0, fee_per_year=5000.0),
)


@dataclass(frozen=True)
class TierLadder:
    """Tiers by last-month AUM (CNY): ``names[i]`` holds AUM in [bounds[i-1], bounds[i])."""

    names: tuple[str, ...] = ("non_core", "core", "gold", "platinum", "black_gold", "diamond")
    bounds: tuple[float, ...] = (10_000.0, 100_000.0, 300_000.0, 1_000_000.0, 6_000_000.0)
    private_banking_threshold: float = 10_000_000.0

    def __post_init__(self) -> None:
        if len(self.names) != len(self.bounds) + 1:
            raise ValueError(
                f"tier ladder needs one more name than bounds: {len(self.names)} names, "
                f"{len(self.bounds)} bounds"
            )
        if list(self.bounds) != sorted(self.bounds):
            raise ValueError(f"tier bounds must increase: {self.bounds}")


@dataclass(frozen=True)
class ChurnDefinition:
    """Who can churn and what counts as churn (DESIGN §5).

    Eligible at cutoff c: open at least ``min_tenure_months``, 3-month average AUM at least
    ``min_aum``, and not already leaving (AUM in month c at least ``leaving_ratio`` of the
    average of the three months before). Churned within ``horizon_months``: AUM at the end of
    the horizon below ``attrition_ratio`` of the 3-month average up to c (every asset account
    closed gives AUM 0, so closures are included).
    """

    horizon_months: int = 3
    min_tenure_months: int = 3
    min_aum: float = 10_000.0
    leaving_ratio: float = 0.5
    attrition_ratio: float = 0.3


@dataclass(frozen=True)
class BankConfig:
    """Definitions shared by features, labels, training and lists (DESIGN §5 defaults)."""

    products: tuple[Product, ...] = DEFAULT_PRODUCTS
    tiers: TierLadder = field(default_factory=TierLadder)
    churn: ChurnDefinition = field(default_factory=ChurnDefinition)

    @property
    def product_names(self) -> tuple[str, ...]:
        return tuple(p.product for p in self.products)

    @property
    def asset_products(self) -> tuple[str, ...]:
        return tuple(p.product for p in self.products if p.kind == "asset")
