"""The `truth` table: the probabilities the generator used, one row per (customer, month).

Not an input to any model; it is the ceiling models are measured against (oracle AUC).
- ``p_churn_3m``: P(exit within the next 3 months) = 1 − Π(1 − λ) over the next three monthly
  hazards — exact given the path of drivers. 0 once the customer has left (the residual
  balance stays put, so there is nothing left to lose).
- ``p_buy_3m_<product>``: P(opening the product within 3 months), exits taken first each month.
  Meaningful where the product is not held; 0 once the customer has left.
- ``p_upgrade_3m``: P(a higher tier 3 months on), integrating the AUM noise and windfalls given
  the driver path, times the chance of not leaving; 0 once the customer has left.
- ``churn_driver``: dominant driver of an exit that happens within the 3 months, else null.
- ``exit_month``: month-end of the exit month, when the customer leaves (may lie after the
  window: the generator simulates 3 months past it).

With a campaign (``synthetic.campaign``) — a call's effect — two more columns:

- ``p_churn_3m_called``: P(exit within the next 3 months) if assigned a call at this cutoff,
  intention to treat: ``reach`` × (1 − Π(1 − λ′)) + (1 − ``reach``) × ``p_churn_3m``, with λ′
  the called hazards of the same three months. ``p_churn_3m`` is the probability with no call
  in the horizon, so a ranking that calls a set S saves exactly
  Σ over S of (``p_churn_3m`` − ``p_churn_3m_called``) × value. 0 once the customer has left.
- ``response_type``: persuadable / sure_thing / lost_cause / sleeping_dog at this cutoff;
  null once the customer has left.

Realised exits follow the realised calls, so on a bank with a campaign history they differ from
``p_churn_3m`` for the customers who were called.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from features.catalog import DRIVERS, NO_DRIVER
from features.config import TierLadder
from features.targets import CHURN, RESPONSE_TYPE, UPGRADE, cross_sell
from synthetic.campaign import RESPONSE_TYPES, ChunkCampaign, called_hazard
from synthetic.customers import CustomerChunk
from synthetic.dynamics import GROWTH_SIGMA, JUMP_RATE, Simulation

HORIZON = 3
JUMP_POINTS = np.log([1.6, 2.0, 2.4])


def churn_within(hazard: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """(n, T) hazards → (n, T - horizon) probability of an exit in the next ``horizon`` months."""
    survive = np.ones((hazard.shape[0], hazard.shape[1] - horizon))
    for k in range(horizon):
        survive *= 1 - hazard[:, k : hazard.shape[1] - horizon + k]
    return 1 - survive


def buy_within(hazard: np.ndarray, purchase: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """(n, T, P) purchase hazards → (n, T - horizon, P); an exit that month rules a purchase out."""
    n_out = hazard.shape[1] - horizon
    still = np.ones((hazard.shape[0], n_out, purchase.shape[2]))
    bought = np.zeros_like(still)
    for k in range(horizon):
        h = hazard[:, k : k + n_out, None]
        mu = purchase[:, k : k + n_out, :]
        bought += still * (1 - h) * mu
        still *= (1 - h) * (1 - mu)
    return bought


def churn_called_within(
    hazard: np.ndarray, cut: np.ndarray, added: np.ndarray, reach: float
) -> np.ndarray:
    """(n, T) hazards and (n, W) call effects per cutoff → (n, W) intention-to-treat
    probability of an exit within the horizon if assigned a call at the cutoff."""
    n_out = cut.shape[1]
    survive = np.ones_like(cut)
    for k in range(HORIZON):
        survive *= 1 - called_hazard(hazard[:, k : k + n_out], cut, added)
    uncalled = churn_within(hazard)[:, :n_out]
    called = reach * (1 - survive) + (1 - reach) * uncalled
    # no effect, no difference: not even a rounding one
    return np.where((cut == 0) & (added == 0), uncalled, called)


def upgrade_within(sim: Simulation, growth: np.ndarray, ladder: TierLadder, p_churn) -> np.ndarray:
    n_out = sim.log_aum.shape[1] - HORIZON
    bounds = np.log(np.array(ladder.bounds))
    log_aum = sim.log_aum[:, :n_out]
    tier = np.searchsorted(bounds, log_aum, side="right")
    next_bound = np.where(tier < len(bounds), bounds[np.minimum(tier, len(bounds) - 1)], np.inf)
    drift = sum(sim.driver_drift[:, k : k + n_out] for k in range(1, HORIZON + 1))
    mean = HORIZON * growth[:, None] + drift - (next_bound - log_aum)
    sd = GROWTH_SIGMA * np.sqrt(HORIZON)
    no_jump = ndtr(mean / sd)
    jump = np.mean([ndtr((mean + j) / sd) for j in JUMP_POINTS], axis=0)
    any_jump = 1 - (1 - JUMP_RATE) ** HORIZON
    p = (1 - any_jump) * no_jump + any_jump * jump
    return np.where(np.isfinite(next_bound), p, 0.0) * (1 - np.nan_to_num(p_churn))


def truth_rows(
    cust: CustomerChunk,
    sim: Simulation,
    months: pd.DatetimeIndex,
    ladder: TierLadder,
    products: tuple[str, ...],
    call: ChunkCampaign | None = None,
) -> pd.DataFrame:
    """Truth rows of one chunk; ``products`` are the catalogue's codes, in simulation order;
    ``call`` the chunk's campaign, whose effect adds ``p_churn_3m_called`` and
    ``response_type``."""
    n_window = len(months)
    p_churn = churn_within(sim.hazard)[:, :n_window]
    p_buy = buy_within(sim.hazard, sim.purchase)[:, :n_window]
    t = np.arange(n_window)[None, :]
    gone = sim.exit_month[:, None] <= t
    p_churn = np.where(gone, 0.0, p_churn)  # a customer who has left has nothing left to lose
    p_buy = np.where(gone[:, :, None], 0.0, p_buy)  # a customer who has left buys nothing
    p_upgrade = upgrade_within(sim, cust.growth, ladder, p_churn)[:, :n_window]
    p_upgrade = np.where(gone, 0.0, p_upgrade)
    exiting = (sim.exit_month[:, None] > t) & (sim.exit_month[:, None] <= t + HORIZON)
    driver_names = np.array([*DRIVERS, NO_DRIVER], dtype=object)
    driver = np.where(exiting, driver_names[sim.exit_driver][:, None], None)

    rows = (cust.open_month[:, None] <= t).ravel()
    n = len(cust.customer_id)
    month_end = months.to_numpy().astype("datetime64[D]")
    first = month_end[0].astype("datetime64[M]")
    exit_date = (first + (sim.exit_month + 1).astype("timedelta64[M]")).astype("datetime64[D]") - 1
    exit_date = np.where(sim.exit_month < 10_000, exit_date, np.datetime64("NaT"))
    frame = {
        "customer_id": np.repeat(cust.customer_id, n_window),
        "month": np.tile(month_end, n),
        CHURN.truth_source(HORIZON): p_churn.ravel(),
    }
    if call is not None:
        p_called = churn_called_within(sim.hazard, call.cut, call.added, call.config.reach)
        frame[CHURN.truth_called_source(HORIZON)] = np.where(gone, 0.0, p_called).ravel()
    for j, name in enumerate(products):
        frame[cross_sell(name).truth_source(HORIZON)] = p_buy[:, :, j].ravel()
    frame[UPGRADE.truth_source(HORIZON)] = p_upgrade.ravel()
    frame["churn_driver"] = driver.ravel()
    if call is not None:
        types = np.array(RESPONSE_TYPES, dtype=object)[call.types]
        frame[RESPONSE_TYPE] = np.where(gone, None, types).ravel()
    frame["exit_month"] = np.repeat(exit_date, n_window)
    out = pd.DataFrame(frame)[rows].reset_index(drop=True)
    for col in out.columns:
        if col.startswith("p_"):
            out[col] = out[col].round(6)
    return out
