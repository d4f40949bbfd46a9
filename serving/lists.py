"""Ranked lists, one per RM as of the cutoff: retention and growth (docs/design.md §5, §12).

Pure pandas over the scored frame (``scores.parquet``), so ``retain score`` and the API build
the same lists.

- **Retention**: customers already leaving (AUM this month below half the three months
  before: p_churn = 1 by rule, so expected loss = contribution) and eligible customers at or
  above the list policy's minimum risk; never a ``do_not_contact`` customer; those already
  leaving first (they are called today), then the called of the month's assignment
  (:mod:`serving.assign`): the ranked places by ``expected_loss = p_churn × contribution_12m``
  less the control held back, then the customers drawn from below the cut; cut at the RM's
  capacity. A list is shorter than capacity when fewer customers qualify.
- **Growth**: customers on no retention list and not at risk, ranked by the value an RM can
  add (``value_added`` from :mod:`serving.offers`), cut at the policy's growth capacity.
- **Assignment** (:func:`assignments`, :mod:`serving.assign`): each listable customer's group
  (treated, control — held back within capacity —, explore — drawn below the cut —, none)
  with the known probability of a call, ``p_treat``; ``assignments.parquet`` keeps it.

Customers without an RM go to their outlet's lists (``outlet_<id>``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import ListPolicy
from serving.assign import ASSIGNMENT, CALLED, CONTROL, TREATED, assign_lists

LIST_COLUMNS = (
    "rank",
    "customer_id",
    "customer_name",
    "tier",
    "pyramid_level",
    "risk_band",
    "leaving_now",
    "p_churn",
    "contribution_12m",
    "expected_loss",
    "saved_value",
    "reason_1",
    "reason_2",
    "reason_3",
    "next_best_offer",
    "offer_amount",
    "offer_date",
    "offer_propensity",
    "action",
)
GROWTH_COLUMNS = (
    "rank",
    "customer_id",
    "customer_name",
    "tier",
    "pyramid_level",
    "p_churn",
    "growth_offer",
    "offer_propensity",
    "value_added",
    "reason_1",
    "reason_2",
    "reason_3",
    "action",
)
OUTLET_PREFIX = "outlet_"
DEFAULT_CAPACITY = 200  # for outlet lists when the bank has no RM capacities at all
RETENTION, GROWTH = "retention", "growth"
GROWTH_SUFFIX = "_growth"
# what scores.parquet says of each customer's place on this month's lists
MEMBERSHIP = ("list_id", "list_kind", "list_rank")
# the column each ranking orders the listable by
RANKED_BY = {"risk": "expected_loss", "uplift": "saved_value"}


def mask_name(name: object) -> str:
    """The first character of each word, stars for the rest: "张伟" → "张*", "Ann" → "A**"."""
    if not isinstance(name, str) or not name:
        return "***"
    return " ".join(w[0] + "*" * max(len(w) - 1, 1) for w in name.split())


def masked_names(names: pd.Series) -> pd.Series:
    """:func:`mask_name` of every name, each distinct name masked once (a bank's names repeat:
    89k distinct among 1M)."""
    codes, distinct = pd.factorize(names, use_na_sentinel=False)
    masked = np.array([mask_name(name) for name in distinct], dtype=object)
    return pd.Series(masked[codes], index=names.index)


def id_text(ids: pd.Series) -> pd.Series:
    """Ids as text, as the bank writes them: integer ids read back as floats because some are
    missing (1.0, NaN — what parquet gives pandas for a nullable integer column) are "1", not
    "1.0"; missing stays missing."""
    if pd.api.types.is_float_dtype(ids):
        known = ids.dropna()
        if (known == known.round()).all():
            ids = ids.astype("Int64")
    return ids.astype("string")


def list_owner(frame: pd.DataFrame) -> pd.Series:
    """The RM as of the cutoff, or ``outlet_<id>`` for customers nobody looks after."""
    outlet = OUTLET_PREFIX + id_text(frame["outlet_id"])
    return id_text(frame["rm_id"]).fillna(outlet).astype(object)


def capacities(
    rms: pd.DataFrame, owners: pd.Series, k: int | None, policy: ListPolicy
) -> dict[str, int]:
    """Capacity per list owner: ``k`` if given, else the RM's capacity; outlets get the
    policy's outlet capacity, else the median RM's."""
    by_rm = dict(zip(id_text(rms["rm_id"]), rms["capacity"].astype(int), strict=True))
    median = int(np.median(list(by_rm.values()))) if by_rm else DEFAULT_CAPACITY
    outlet_capacity = policy.outlet_capacity or median
    return {
        owner: k if k is not None else by_rm.get(owner, outlet_capacity)
        for owner in owners.unique()
    }


def listable(frame: pd.DataFrame, policy: ListPolicy) -> pd.Series:
    """Who may be on a retention list: contactable, and leaving now or eligible at or above
    the minimum risk — and, when the lists rank by saved value, one a call helps (τ̂ > 0)."""
    contactable = ~frame["do_not_contact"].fillna(True).astype(bool)
    leaving = frame["leaving_now"].fillna(False).astype(bool)
    eligible = frame["eligible_churn"].fillna(False).astype(bool)
    at_risk = eligible & (frame["p_churn"] >= policy.min_risk)
    if "uplift" in frame:  # a customer a call does not help is never called
        at_risk &= frame["uplift"].fillna(0) > 0
    return contactable & (leaving | at_risk)


def assignments(
    scored: pd.DataFrame,
    rms: pd.DataFrame,
    policy: ListPolicy,
    cutoff: str,
    k: int | None = None,
    score: str = "expected_loss",
) -> pd.DataFrame:
    """Every listable customer's group, ``p_treat`` and would-be rank in its list
    (``serving.assign``); customers already leaving are called by rule (``treated``,
    ``p_treat`` 1); empty for the rest. ``scored`` must carry the leaving rule and ``score``."""
    out = pd.DataFrame(
        {"list_group": None, "p_treat": np.nan, "assigned_rank": np.nan}, index=scored.index
    ).astype({"list_group": object})
    can = listable(scored, policy)
    leaving = scored["leaving_now"].fillna(False).astype(bool)
    out.loc[can & leaving, ["list_group", "p_treat"]] = [TREATED, 1.0]
    frame = scored.loc[can, ["customer_id", "outlet_id", "rm_id"]].assign(
        score=scored.loc[can, score], leaving=leaving[can]
    )
    frame["list_id"] = list_owner(frame)
    cap = capacities(rms, frame["list_id"], k, policy)
    leaving_per_list = frame.groupby("list_id")["leaving"].sum()
    places = {i: max(cap[i] - int(leaving_per_list.get(i, 0)), 0) for i in cap}
    pool = frame[~frame["leaving"]]
    if len(pool):
        drawn = assign_lists(pool, places, policy, cutoff)
        out.loc[drawn.index, list(ASSIGNMENT)] = drawn[list(ASSIGNMENT)].to_numpy()
    return out.astype({"p_treat": "float64", "assigned_rank": "float64"})


def leaving_adjusted(frame: pd.DataFrame) -> pd.DataFrame:
    """The already-leaving rule (docs/design.md §5) and expected loss, the one place both are made:
    p_churn = 1 and band "high" for customers already leaving; expected loss = p_churn ×
    contribution (a negative contribution counts as none). Applying it twice changes nothing."""
    out = frame.copy()
    leaving = out["leaving_now"].fillna(False).astype(bool)
    out["p_churn"] = out["p_churn"].where(~leaving, 1.0)
    if "risk_band" in out:
        out["risk_band"] = out["risk_band"].where(~leaving, "high")
    out["expected_loss"] = out["p_churn"] * out["contribution_12m"].clip(lower=0)
    return out


def build_lists(
    scored: pd.DataFrame, rms: pd.DataFrame, policy: ListPolicy, k: int | None = None
) -> pd.DataFrame:
    """Every retention list in one frame: ``list_id`` plus :data:`LIST_COLUMNS`, ranked.

    ``scored`` is the scores frame: ids, ``rm_id``, ``outlet_id``, ``eligible_churn``,
    ``leaving_now``, ``do_not_contact``, ``p_churn``, ``contribution_12m``, names, tiers,
    rendered reasons and the retention offer columns, and the assignment
    (:func:`assignments`: the called — already leaving, ``treated``, ``explore`` — are listed,
    in that order). Without an assignment every listable customer is a candidate, ranked by
    expected loss."""
    frame = leaving_adjusted(scored[listable(scored, policy)])
    if "saved_value" not in frame:  # ranked by risk: no uplift model, no saved value
        frame = frame.assign(saved_value=np.nan)
    if "list_group" in frame:
        frame = frame[frame["list_group"].isin(CALLED)]
    if "assigned_rank" in frame:
        after = frame["assigned_rank"].fillna(0)  # the already leaving: 0, first
    else:
        after = pd.Series(0, index=frame.index)
    frame = frame.assign(_after=after)
    keys = ("_after", "expected_loss")
    return _ranked(frame, rms, policy, k, keys, LIST_COLUMNS, first="leaving_now")


def build_growth_lists(
    scored: pd.DataFrame, rms: pd.DataFrame, policy: ListPolicy, retention: pd.DataFrame
) -> pd.DataFrame:
    """Every growth list: customers not at risk and on no retention list (nor held back),
    with something to offer, ranked by ``value_added``, cut at the growth capacity."""
    # a growth row shows the offered model's reasons, not churn's
    frame = as_growth_rows(scored[_growth_pool(scored, policy, retention["customer_id"])])
    return _ranked(frame, rms, policy, policy.growth_capacity, "value_added", GROWTH_COLUMNS)


def _growth_pool(scored: pd.DataFrame, policy: ListPolicy, retained=()) -> pd.Series:
    """Who may be on a growth list: contactable, not at risk, on no retention list (nor held
    back), with something worth offering."""
    contactable = ~scored["do_not_contact"].fillna(True).astype(bool)
    calm = ~scored["leaving_now"].fillna(False).astype(bool) & (scored["p_churn"] < policy.min_risk)
    pool = contactable & calm & ~scored["customer_id"].isin(retained)
    if "list_group" in scored:
        pool &= (scored["list_group"] != CONTROL).to_numpy()
    return pool & scored["growth_offer"].notna() & (scored["value_added"] > 0)


def growth_listed(scored: pd.DataFrame, policy: ListPolicy) -> np.ndarray:
    """Rows of ``scored`` on a growth list under ``policy`` (the first ``growth_capacity`` of
    each list by value added), without their reasons: reasons are explained for these only.

    Retention lists need not be known: a growth customer is not at risk (p_churn below the
    minimum risk, not leaving), so never on a retention list nor in its control group — the
    same rows whatever the retention capacities, here and in the API."""
    pool = _growth_pool(scored, policy)
    frame = scored.loc[pool, ["customer_id", "value_added", "outlet_id", "rm_id"]]
    frame = frame.assign(list_id=list_owner(frame), row=np.flatnonzero(pool.to_numpy()))
    frame = frame.sort_values(
        ["list_id", "value_added", "customer_id"], ascending=[True, False, True]
    )
    rank = frame.groupby("list_id", sort=False).cumcount()
    listed = np.zeros(len(scored), dtype=bool)
    listed[frame["row"].to_numpy()[(rank < policy.growth_capacity).to_numpy()]] = True
    return listed


def _ranked(frame, rms, policy, k, by, columns, first: str | None = None) -> pd.DataFrame:
    """Rank within each list by ``by`` (a column, descending; or (ascending column, descending
    column)), rows flagged ``first`` ahead of the rest, and cut at capacity."""
    frame = frame.copy()
    frame["list_id"] = list_owner(frame)
    then, by = by if isinstance(by, tuple) else (None, by)
    keys = ["list_id", *([first] if first else []), *([then] if then else []), by, "customer_id"]
    order = [True, *([False] if first else []), *([True] if then else []), False, True]
    frame = frame.sort_values(keys, ascending=order)
    frame["rank"] = frame.groupby("list_id", sort=False).cumcount() + 1
    cap = capacities(rms, frame["list_id"], k, policy)
    frame = frame[frame["rank"] <= frame["list_id"].map(cap)]
    return frame[["list_id", *columns]].reset_index(drop=True)


def list_file(list_id: str, kind: str, fmt: str) -> str:
    """The name of a list's file: ``<list_id>.csv`` for retention, ``<list_id>_growth.xlsx``…"""
    return f"{list_id}{GROWTH_SUFFIX if kind == GROWTH else ''}.{fmt}"


def membership(ids: pd.Series, retention: pd.DataFrame, growth: pd.DataFrame) -> pd.DataFrame:
    """:data:`MEMBERSHIP` of each customer of ``ids`` (indexed like ``ids``)."""
    placed = pd.concat(
        [
            frame[["customer_id", "list_id", "rank"]].assign(list_kind=kind)
            for frame, kind in ((retention, RETENTION), (growth, GROWTH))
        ],
        ignore_index=True,
    )
    if placed["customer_id"].duplicated().any():
        raise ValueError("a customer is on two lists: retention and growth lists must not overlap")
    placed = placed.set_index("customer_id")
    return pd.DataFrame(
        {
            "list_id": ids.map(placed["list_id"]).astype(object),
            "list_kind": ids.map(placed["list_kind"]).astype(object),
            "list_rank": ids.map(placed["rank"]).astype("Int64"),
        },
        index=ids.index,
    )


def stored_list(
    scored: pd.DataFrame, list_id: str, kind: str, k: int | None = None
) -> pd.DataFrame:
    """A list as ``retain score`` cut it, read from the answer frame's membership: the same
    columns :func:`build_lists` / :func:`build_growth_lists` return (display columns such as
    ``reason_1`` must be in the frame, see ``serving.score.with_language``), at most ``k``."""
    rows = scored[(scored["list_id"] == list_id) & (scored["list_kind"] == kind)]
    rows = rows.sort_values("list_rank").rename(columns={"list_rank": "rank"})
    if kind == GROWTH:
        rows = as_growth_rows(rows)
    elif "saved_value" not in rows:
        rows = rows.assign(saved_value=np.nan)
    columns = GROWTH_COLUMNS if kind == GROWTH else LIST_COLUMNS
    rows = rows.assign(rank=rows["rank"].astype(int))[["list_id", *columns]]
    return (rows if k is None else rows.head(k)).reset_index(drop=True)


def as_growth_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as a growth list shows them: the offered model's propensity, action and reasons."""
    return frame.assign(
        offer_propensity=frame["growth_offer_propensity"],
        action=frame["growth_action"],
        **{f"reason_{r}": frame[f"growth_reason_{r}"] for r in (1, 2, 3)},
    )


def assignment_rows(scored: pd.DataFrame, cutoff: str) -> pd.DataFrame:
    """``assignments.parquet`` (docs/design.md §14): one row per listable customer —
    ``customer_id``, ``cutoff``, ``list_id``, ``group``, ``p_treat``, ``rank`` (on the list, or
    the would-be rank counted after those already leaving) — from the assigned, listed answer
    frame."""
    used = ["customer_id", "rm_id", "outlet_id", "leaving_now", "list_group", "p_treat"]
    rows = scored.loc[scored["list_group"].notna(), [*used, "assigned_rank", "list_rank"]]
    owner = list_owner(rows)
    leaving = rows["leaving_now"].fillna(False).astype(bool)
    before = leaving.groupby(owner).transform("sum")
    would_be = before + rows["assigned_rank"]
    rank = rows["list_rank"].astype("Float64").fillna(would_be.astype("Float64"))
    return pd.DataFrame(
        {
            "customer_id": rows["customer_id"].to_numpy(),
            "cutoff": pd.Timestamp(cutoff).date(),
            "list_id": owner.to_numpy(),
            "group": rows["list_group"].to_numpy(dtype=object),
            "p_treat": rows["p_treat"].to_numpy(dtype="float64"),
            "rank": rank.astype("Int64").to_numpy(),
        }
    )
