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
    one = pool.assign(list_id=0)
    return assign_lists(one, {0: max(capacity - leaving, 0)}, policy, cutoff)


def assign_lists(pool: pd.DataFrame, places: dict, policy: ListPolicy, cutoff: str) -> pd.DataFrame:
    """:func:`assign_list` of every list at once (a bank has thousands): ``pool`` has
    ``list_id``, ``customer_id`` and ``score``; ``places``: per list, its capacity less its
    customers already leaving (at least 0)."""
    order = pool.sort_values(
        ["list_id", "score", "customer_id"], ascending=[True, False, True], kind="stable"
    )
    lists = order.groupby("list_id", sort=False)
    position = lists.cumcount().to_numpy()
    size = lists["customer_id"].transform("size").to_numpy()
    room = order["list_id"].map(places).to_numpy(dtype=np.int64)
    explore_slots = np.round(policy.explore_share * room).astype(np.int64)
    ranked = np.minimum(room - explore_slots, size)
    top = position < ranked
    ids = order["customer_id"].to_numpy(dtype=object)
    held = np.zeros(len(order), dtype=bool)
    held[top] = uniform("control", cutoff, ids[top]) < policy.control_share
    group = np.where(top, np.where(held, CONTROL, TREATED), NONE).astype(object)
    p_treat = np.where(top, 1.0 - policy.control_share, 0.0)
    below = ~top
    if below.any():
        freed = pd.Series(held).groupby(order["list_id"].to_numpy()).transform("sum").to_numpy()
        slots = np.minimum(explore_slots + freed, size - ranked)
        chosen = _drawn(order["list_id"].to_numpy()[below], ids[below], slots[below], cutoff)
        group[below] = np.where(chosen, EXPLORE, NONE)
        p_treat[below] = slots[below] / (size - ranked)[below]
    return pd.DataFrame(
        {"list_group": group, "p_treat": p_treat, "assigned_rank": position + 1},
        index=order.index,
    ).reindex(pool.index)


def _drawn(lists: np.ndarray, ids: np.ndarray, slots: np.ndarray, cutoff: str) -> np.ndarray:
    """Of the customers below each list's cut (in ranked order), the ``slots`` with the
    smallest exploration draws, ties to the higher ranked."""
    draw = uniform("explore", cutoff, ids)
    codes = pd.factorize(lists)[0]
    order = np.lexsort((np.arange(len(draw)), draw, codes))
    rank = np.empty(len(draw), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    return rank < slots
