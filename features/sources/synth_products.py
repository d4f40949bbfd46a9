"""How synthetic customers hold and buy products: propensity shapes, terms and AUM shares.

A product's propensity is a logit in wealth, age and risk profile. The same shape drives the
holdings at the start of the window and the monthly purchase hazard (plus products held, RM
contact last month and a hidden per-customer term), so purchases follow who the customer is.
"""

from __future__ import annotations

import numpy as np

PRODUCTS = ("demand_deposit", "time_deposit", "wealth_management", "mutual_fund", "insurance",
            "credit_card", "consumer_loan", "mortgage", "private_banking_service")  # fmt: skip
ASSET = np.array([True, True, True, True, True, False, False, False, False])
DEMAND, TIME_DEPOSIT, WEALTH_MANAGEMENT = 0, 1, 2
CREDIT_CARD, CONSUMER_LOAN, MORTGAGE, PRIVATE_BANKING = 5, 6, 7, 8
MATURING = (TIME_DEPOSIT, WEALTH_MANAGEMENT)
TERMS = {TIME_DEPOSIT: ((3, 6, 12, 24, 36), (0.15, 0.25, 0.35, 0.15, 0.10)),
         WEALTH_MANAGEMENT: ((3, 6, 12), (0.3, 0.4, 0.3))}  # fmt: skip
SHARE_WEIGHT = np.array([1.0, 1.4, 2.0, 0.8, 0.6, 0, 0, 0, 0])
PURCHASE_OFFSET = -3.3
MONTHLY_CLOSE = np.array([0, 0.004, 0.004, 0.008, 0.003, 0.006, 0.03, 0.004, 0.0])


def propensity_logits(log10_wealth: np.ndarray, age: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Logit of holding each product, shape (n, products); demand deposits are always held."""
    x = log10_wealth - 4.5
    a = (age - 44) / 10
    r = risk.astype(float) - 3
    pb = np.where(log10_wealth >= 6.6, 2.0 + 3.0 * (log10_wealth - 6.78), -30.0)
    return np.column_stack(
        [
            np.full_like(x, 30.0),
            -0.6 + 0.35 * a + 0.5 * x - 0.35 * r,
            -2.0 + 1.3 * x + 0.15 * r + 0.1 * a,
            -2.4 + 0.6 * x + 0.55 * r - 0.2 * a,
            -1.8 + 0.4 * x + 0.25 * a,
            -0.2 + 0.3 * x - 0.3 * a,
            -2.4 - 0.25 * a - 0.2 * x,
            -1.9 + 0.2 * x - 0.4 * ((age - 38) / 10) ** 2,
            pb,
        ]
    )


def draw_terms(rng: np.random.Generator, product: int, n: int) -> np.ndarray:
    terms, p = TERMS[product]
    return rng.choice(np.array(terms), n, p=p)
