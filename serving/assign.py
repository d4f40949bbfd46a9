"""Who is called this month, by a randomised policy whose probabilities are known
(docs/design.md §12, §14) — so the lists' effect can be measured and whom a call saves can be
learned.

In each list (an RM's, or an outlet's), among the listable customers who are not already
leaving, ranked by the ranking score (expected loss, or saved value):

- the ``S = capacity − already leaving`` places are the would-be list; of them the top
  ``S − X`` are the ranked places and ``X = round(explore_share × S)`` are exploration slots;
- **control**: each customer of the ranked places is held back with probability
  ``control_share`` (a hash of cutoff and customer id), so treated and control are alike;
- **exploration**: the exploration slots, plus the places the control freed, go to customers
  drawn at random among all those ranked below the ranked places (the smallest hashes), so the
  effect of a call is also seen where the ranking did not look;
- ``p_treat`` is each customer's known probability of being put on the list: ``1 −
  control_share`` in the ranked places, ``slots / pool`` below them (given the control's
  draws, which do not depend on who is below).

Groups: ``treated`` (ranked, called), ``control`` (ranked, held back), ``explore`` (drawn from
below, called), ``none`` (below, not drawn). Customers already leaving are called by rule
(``treated``, ``p_treat`` = 1) and are outside the experiment; so are rows whose ``p_treat`` is
0 or 1. Draws are hashes of (cutoff, customer id): the same month scored twice gives the same
groups.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from features.config import ListPolicy

TREATED, CONTROL, EXPLORE, NONE = "treated", "control", "explore", "none"
GROUPS = (TREATED, CONTROL, EXPLORE, NONE)
CALLED = (TREATED, EXPLORE)
# what the assignment adds to each listable customer's row
ASSIGNMENT = ("list_group", "p_treat", "assigned_rank")


def uniform(salt: str, cutoff: str, ids: pd.Series) -> np.ndarray:
    """A reproducible uniform draw in [0, 1) per customer id, for one purpose (``salt``)."""
    return np.array(
        [
            int.from_bytes(hashlib.sha256(f"{salt}|{cutoff}|{cid}".encode()).digest()[:8], "big")
            / 2**64
            for cid in ids
        ]
    )


def assign_list(
    pool: pd.DataFrame, capacity: int, leaving: int, policy: ListPolicy, cutoff: str
) -> pd.DataFrame:
    """The assignment of one list's listable, not-leaving customers.

    ``pool`` has ``customer_id`` and ``score`` (higher first); ``leaving`` customers of the list
    already take places by rule. Returns ``list_group``, ``p_treat`` and ``assigned_rank`` (the
    rank on the list, or the would-be rank below it) indexed like ``pool``."""
    order = pool.sort_values(["score", "customer_id"], ascending=[False, True], kind="stable")
    n = len(order)
    places = max(capacity - leaving, 0)
    explore_slots = int(round(policy.explore_share * places))
    ranked = min(places - explore_slots, n)
    top, below = order.iloc[:ranked], order.iloc[ranked:]
    group = np.full(n, NONE, dtype=object)
    p_treat = np.zeros(n)
    held = uniform("control", cutoff, top["customer_id"]) < policy.control_share
    group[:ranked] = np.where(held, CONTROL, TREATED)
    p_treat[:ranked] = 1.0 - policy.control_share
    slots = min(explore_slots + int(held.sum()), len(below))
    if len(below):
        draw = uniform("explore", cutoff, below["customer_id"])
        chosen = np.zeros(len(below), dtype=bool)
        chosen[np.argsort(draw, kind="stable")[:slots]] = True
        group[ranked:] = np.where(chosen, EXPLORE, NONE)
        p_treat[ranked:] = slots / len(below)
    rank = np.arange(1, n + 1)
    return pd.DataFrame(
        {"list_group": group, "p_treat": p_treat, "assigned_rank": rank}, index=order.index
    ).reindex(pool.index)
