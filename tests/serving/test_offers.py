"""What a list row offers (docs/design.md §12) on hand-made frames: retention rows keep money,
growth rows add value, a complaint comes first, a held product is never offered."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from features.config import BankConfig, OfferPolicy, Product, Tier, TierLadder
from serving.offers import (
    ASSETS_LEAVING,
    OFFER_PRODUCT,
    OFFER_RENEWAL,
    RESOLVE_COMPLAINT,
    RETENTION_CALL,
    TALK_UPGRADE,
    UPGRADE,
    growth_offers,
    product_values,
    retention_offers,
    upgrade_gain,
)

PRODUCTS = [
    Product(product="fund", kind="asset", margin_rate=0.01),
    Product(product="deposit", kind="asset", margin_rate=0.02, fee_per_year=10.0),
    Product(product="loan", kind="liability", margin_rate=0.03),
    Product(product="advice", kind="service", fee_per_year=100.0),
]
CODES = [p.product for p in PRODUCTS]
LADDER = TierLadder(
    tiers=(
        Tier(name="basic", min_aum=0),
        Tier(name="silver", min_aum=10_000),
        Tier(name="gold", min_aum=100_000),
    )
)
# the books below test which product wins; the floor on the chance of taking it (min_lift) has
# its own test
CONFIG = BankConfig(tiers=LADDER, offers=OfferPolicy(min_lift=0)).with_products(PRODUCTS)
# what one holder of each brings a year (product_values is tested on its own below)
VALUES = {"fund": 30.0, "deposit": 100.0, "loan": 1000.0, "advice": 100.0}
MATURES = date(2025, 1, 15)


def customer(holds: tuple[str, ...] = (), **columns) -> dict:
    """One customer's scores and offer inputs; no propensity, complaint, maturity or upgrade
    chance unless ``columns`` give one. ``holds``: the products held at the cutoff."""
    row = {f"propensity_{p}": 0.0 for p in CODES}
    row |= {
        "tier": "basic",
        "contribution_12m": 200.0,
        "p_upgrade": 0.0,
        "leaving_now": False,
        "open_complaints": 0.0,
        "maturing_product": None,
        "maturing_30d": 0.0,
        "maturing_date": None,
    }
    row |= {f"holds_{p}": p in holds for p in CODES}
    return row | columns


def split(*rows: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scored frame and the held-products frame, as serving/batch.py hands them over."""
    frame = pd.DataFrame(list(rows))
    held = pd.DataFrame({p: frame.pop(f"holds_{p}").astype(bool) for p in CODES})
    return frame, held


def column(out: pd.DataFrame, name: str) -> list:
    """A column with every missing value as None, so lists compare plainly."""
    return [None if pd.isna(v) else v for v in out[name]]


# --- product value and tier upgrade -----------------------------------------------------


def test_a_products_value_is_its_fee_plus_its_margin_on_the_median_holders_balance():
    features = pd.DataFrame(
        {
            # holders hold 1,000, 2,000 and 6,000: median 2,000 (mean 3,000); the non-holder's
            # 99,999 does not count
            "balance_fund": [1000.0, 2000.0, 6000.0, 99_999.0],
            "holds_fund": [True, True, True, False],
            # an unknown holding is not a holding: median of 10,000 and 20,000
            "balance_deposit": [10_000.0, 20_000.0, 500_000.0, 0.0],
            "holds_deposit": [True, True, None, False],
            # nobody holds it: no typical balance
            "balance_loan": [0.0, 0.0, 0.0, 0.0],
            "holds_loan": [False, False, False, False],
            # a fee product without balances
            "holds_advice": [True, False, False, False],
        }
    )
    assert product_values(tuple(PRODUCTS), features) == {
        "fund": 0.01 * 2000,
        "deposit": 10.0 + 0.02 * 15_000,
        "loan": 0.0,
        "advice": 100.0,
    }


def test_the_upgrade_gain_is_the_next_tiers_median_contribution_over_this_ones():
    frame = pd.DataFrame(
        {
            "tier": ["basic", "basic", "basic", "silver", "silver", "gold"],
            "contribution_12m": [100.0, 200.0, 300.0, 1000.0, 3000.0, 5000.0],
        }
    )
    # medians: basic 200, silver 2,000, gold 5,000; gold is the top
    assert upgrade_gain(frame, CONFIG).tolist() == [1800.0] * 3 + [3000.0] * 2 + [0.0]


def test_no_upgrade_gain_when_the_next_tier_is_poorer_empty_or_the_tier_unknown():
    frame = pd.DataFrame(
        {
            "tier": ["basic", "silver", "platinum", None],
            "contribution_12m": [5000.0, 1000.0, 9000.0, 9000.0],
        }
    )
    # basic → silver loses 4,000: no gain; nobody is gold; platinum is not on this ladder
    assert upgrade_gain(frame, CONFIG).tolist() == [0.0, 0.0, 0.0, 0.0]


# --- retention offers -------------------------------------------------------------------


def retention_book() -> tuple[pd.DataFrame, pd.DataFrame]:
    # worth (propensity × value): fund 0.5 × 30 = 15, deposit 0.2 × 100 = 20, and the loan
    # 0.9 × 1,000 = 900 and advice 0.9 × 100 = 90 that a retention row never offers
    likely = {
        "propensity_fund": 0.5,
        "propensity_deposit": 0.2,
        "propensity_loan": 0.9,
        "propensity_advice": 0.9,
    }
    maturing = {
        "maturing_product": "deposit",
        "maturing_30d": 50_000.0,
        "maturing_date": MATURES,
    }
    return split(
        customer(**likely),  # 0: the better asset
        customer(holds=("deposit",), **likely),  # 1: not the one held
        customer(holds=("fund", "deposit"), **likely),  # 2: every asset held: nothing
        customer(holds=("deposit",), **likely, **maturing),  # 3: renew what matures
        customer(holds=("deposit",), **likely, **maturing | {"maturing_30d": 0.0}),  # 4: later
        customer(holds=("deposit",), open_complaints=1.0, **likely, **maturing),  # 5
        customer(leaving_now=True, **likely),  # 6
        customer(holds=("deposit",), leaving_now=True, **likely, **maturing),  # 7
        customer(leaving_now=True, open_complaints=2.0, **likely),  # 8
        customer(**likely | {"propensity_deposit": np.nan}),  # 9: no deposit score
    )


def test_a_retention_row_offers_the_best_asset_not_held_never_a_loan_or_a_fee():
    frame, held = retention_book()
    out = retention_offers(frame, held, VALUES, CONFIG)
    assert list(out.index) == list(frame.index)
    assert column(out, "next_best_offer")[:3] == ["deposit", "fund", None]
    assert column(out, "offer_propensity")[:3] == [0.2, 0.5, None]
    assert column(out, "offer_amount")[:3] == [None, None, None]
    assert column(out, "offer_date")[:3] == [None, None, None]
    assert column(out, "action")[:3] == [RETENTION_CALL] * 3
    assert column(out, "next_best_offer")[9] == "fund"


def test_a_maturing_product_is_renewed_with_its_amount_and_date():
    frame, held = retention_book()
    out = retention_offers(frame, held, VALUES, CONFIG).loc[[3, 4]]
    assert column(out, "next_best_offer") == ["deposit", "fund"]
    assert column(out, "offer_amount") == [50_000.0, None]
    assert column(out, "offer_date") == [MATURES, None]
    assert column(out, "offer_propensity") == [None, 0.5]
    assert column(out, "action") == [OFFER_RENEWAL, RETENTION_CALL]


def test_an_open_complaint_means_no_offer_and_resolving_it_first():
    frame, held = retention_book()
    out = retention_offers(frame, held, VALUES, CONFIG).loc[[5, 8]]
    assert column(out, "next_best_offer") == [None, None]
    assert column(out, "offer_propensity") == [None, None]
    assert column(out, "offer_amount") == [None, None]
    assert column(out, "offer_date") == [None, None]
    assert column(out, "action") == [RESOLVE_COMPLAINT, RESOLVE_COMPLAINT]


def test_a_customer_already_leaving_is_called_today_with_the_offer_that_keeps_the_money():
    frame, held = retention_book()
    out = retention_offers(frame, held, VALUES, CONFIG).loc[[6, 7]]
    assert column(out, "action") == [ASSETS_LEAVING, ASSETS_LEAVING]
    assert column(out, "next_best_offer") == ["deposit", "deposit"]
    assert column(out, "offer_amount") == [None, 50_000.0]
    assert column(out, "offer_date") == [None, MATURES]


def test_the_banks_retention_kinds_decide_what_a_retention_row_may_offer():
    frame, held = retention_book()
    config = CONFIG.model_copy(update={"offers": OfferPolicy(retention_kinds=("asset", "service"))})
    out = retention_offers(frame, held, VALUES, config)
    # advice (0.9 × 100 = 90) now beats the deposit (20); the loan is still never offered
    assert column(out, "next_best_offer")[:3] == ["advice", "advice", "advice"]
    assert column(out, "offer_propensity")[:3] == [0.9, 0.9, 0.9]


# --- growth offers ----------------------------------------------------------------------


def growth_book() -> tuple[pd.DataFrame, pd.DataFrame]:
    # tier medians: basic 200, silver 2,000, gold 5,000 → upgrade gains 1,800, 3,000, 0
    return split(
        # 0: upgrade 0.5 × 1,800 = 900 beats the loan 0.5 × 1,000 = 500
        customer(p_upgrade=0.5, contribution_12m=100.0, propensity_loan=0.5),
        # 1: upgrade 0.1 × 1,800 = 180 loses to the loan's 500
        customer(p_upgrade=0.1, contribution_12m=200.0, propensity_loan=0.5),
        # 2: the loan is held; advice 0.3 × 100 = 30 beats fund 0.4 × 30 = 12, deposit 10
        customer(
            holds=("loan",),
            contribution_12m=300.0,
            propensity_loan=0.9,
            propensity_advice=0.3,
            propensity_fund=0.4,
            propensity_deposit=0.1,
        ),
        # 3: a complaint: nothing, though upgrade 0.9 × 3,000 and the loan are worth a lot
        customer(
            tier="silver",
            contribution_12m=1000.0,
            p_upgrade=0.9,
            open_complaints=1.0,
            propensity_loan=0.9,
        ),
        # 4: holds everything and will not move up
        customer(
            holds=tuple(CODES),
            tier="silver",
            contribution_12m=3000.0,
            **{f"propensity_{p}": 0.9 for p in CODES},
        ),
        # 5: the top tier has nowhere to go; fund 0.4 × 30 = 12
        customer(tier="gold", contribution_12m=5000.0, p_upgrade=0.9, propensity_fund=0.4),
    )


def test_a_growth_row_offers_the_best_of_a_tier_upgrade_and_the_products_not_held():
    frame, held = growth_book()
    out = growth_offers(frame, held, VALUES, CONFIG)
    assert list(out.index) == list(frame.index)
    assert column(out, "growth_offer") == [UPGRADE, "loan", "advice", None, None, "fund"]
    assert np.allclose(out["value_added"], [900.0, 500.0, 30.0, 0.0, 0.0, 12.0])
    offered = out.loc[[0, 1, 2, 5]]
    assert column(offered, "offer_propensity") == [0.5, 0.5, 0.3, 0.4]
    assert column(offered, "action") == [TALK_UPGRADE, OFFER_PRODUCT, OFFER_PRODUCT, OFFER_PRODUCT]
    assert out.loc[3, "action"] == RESOLVE_COMPLAINT
    # a complaint or nothing to offer: no propensity; nothing to offer: no action either
    assert out.loc[[3, 4], "offer_propensity"].isna().all()
    assert pd.isna(out.loc[4, "action"])


def test_a_growth_offer_is_never_a_product_held():
    frame, held = growth_book()
    out = growth_offers(frame, held, VALUES, CONFIG)
    offered = out["growth_offer"].to_numpy(dtype=object)
    for product in CODES:
        assert not (held[product].to_numpy() & (offered == product)).any(), product


def test_the_banks_growth_kinds_decide_which_products_grow():
    frame, held = growth_book()
    config = CONFIG.model_copy(
        update={"offers": OfferPolicy(growth_kinds=("liability",), min_lift=0)}
    )
    out = growth_offers(frame, held, VALUES, config)
    # the upgrade is always a growth offer; only the loan among products
    assert column(out, "growth_offer") == [UPGRADE, "loan", None, None, None, None]
    assert np.allclose(out["value_added"], [900.0, 500.0, 0.0, 0.0, 0.0, 0.0])


def test_a_product_is_offered_only_to_a_customer_likelier_than_average_to_take_it():
    # fund's month average 0.05, deposit's 0.20 (the NaN does not count)
    frame, held = split(
        customer(leaving_now=True, propensity_fund=0.01, propensity_deposit=0.01),  # neither
        customer(propensity_fund=0.02, propensity_deposit=0.30),  # deposit: above its average
        customer(propensity_fund=0.12, propensity_deposit=0.29),  # both: deposit 29 > fund 3.6
        customer(propensity_fund=0.05, propensity_deposit=np.nan),  # fund: just the average
    )
    config = CONFIG.model_copy(update={"offers": OfferPolicy()})  # min_lift 1: the default
    out = retention_offers(frame, held, VALUES, config)
    assert column(out, "next_best_offer") == [None, "deposit", "deposit", "fund"]
    assert pd.isna(out.loc[0, "offer_propensity"]) and out.loc[0, "action"] == ASSETS_LEAVING
    lenient = retention_offers(frame, held, VALUES, CONFIG)  # min_lift 0: any chance
    assert column(lenient, "next_best_offer")[0] == "deposit"
