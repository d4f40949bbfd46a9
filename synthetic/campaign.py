"""What a retention call does to churn, and the retention lists the bank ran before retain.

**The call effect.** At each cutoff a customer has a *response type*, read from what the data
shows at the cutoff (the drivers of ``synthetic.dynamics`` that are on, and for how long).
Under the structure "heterogeneous" (the default), first match wins:

- *lost cause* — a reached call changes nothing: salary gone; money moving out (to other banks
  or to own accounts elsewhere) for more than ``persuadable_months``; a high hidden term
  (above ``lost_cause_hidden`` s.d.) with any driver on;
- *persuadable* — each monthly exit hazard of the horizon is cut by ``persuadable_effect`` ×
  the calling RM's skill (at most 95%): an open complaint, neglect (the RM stopped calling), a
  deposit maturing within the horizon, money that started moving out at most
  ``persuadable_months`` ago;
- *sleeping dog* — no driver, and dormant (the ``sleeping_dog_share`` of customers with the
  least card activity): a call adds ``sleeping_dog_hazard`` to each month's hazard;
- *sure thing* — anyone else: nothing changes.

"follows_risk" makes everyone persuadable (the effect follows the risk);
"sleeping_dogs_among_risky" makes the customers moving savings to other banks sleeping dogs and
the dormant sure things. An assigned call reaches the customer with probability ``reach``:
``p_churn_3m_called`` is the intention-to-treat probability, ``reach`` × P(exit | reached) +
(1 − ``reach``) × ``p_churn_3m``. A call lasts the horizon: the three monthly hazards from the
cutoff on. ``p_churn_3m`` is the probability with no call in the horizon.

**The history.** From the campaign's first cutoff to its last, each list (an RM's book; an
outlet's customers nobody looks after, called by the outlet's first RM) ranks its *listable*
customers — alive, open ≥ 3 months, 3-month average AUM ≥ 10k, not already leaving (the
default churn rule), contactable, and not assigned at one of the two cutoffs before (a call,
or a hold-out, lasts the horizon) — by the policy's score. The top ``(1 − exploration_share)``
× capacity are *within the cut*: each is held back as ``control`` with probability
``control_share``, else ``treated``. Below the cut, each customer is drawn as ``explore``
(called) with probability q = min(``max_explore_probability``, ``exploration_share`` ×
capacity / customers below the cut), else ``none``. ``p_treat`` is the probability of being
called: 1 − ``control_share`` within the cut, q below it. Without exploration nobody below the
cut can be called, and they get no row. A called customer is reached with probability
``reach``; realised exits follow the realised calls (common random numbers: the exit draw is
the unchanged bank's, compared with the called hazard).

Every draw comes from the campaign's own streams (``[seed, 2]`` bank-wide, ``[seed, 3, k]``
for chunk k), so a bank without a campaign is the bank it always was. A chunk holds a share of
every book: each list's capacity is split over the chunks by their size, and the rank within
the whole list is given once all chunks are written (:func:`global_ranks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from features.config import ChurnDefinition
from synthetic.config import Campaign, SynthConfig
from synthetic.customers import ACTIVITY_MEDIAN, ACTIVITY_SIGMA, CustomerChunk
from synthetic.dynamics import COMPLAINT, DECLINE, NEGLECT, OUTFLOW, SALARY
from synthetic.org import Org

RESPONSE_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
PERSUADABLE, SURE_THING, LOST_CAUSE, SLEEPING_DOG = range(len(RESPONSE_TYPES))
GROUPS = ("treated", "control", "explore", "none")
TREATED, CONTROL, EXPLORE, NONE = range(len(GROUPS))
HORIZON = 3  # months a call lasts: the horizon of p_churn_3m
MAX_CUT = 0.95  # however skilled the RM, a call removes at most this share of a hazard
OUTLET_LIST_PREFIX = "outlet_"  # the list of an outlet's customers nobody looks after
CHURN_RULE = ChurnDefinition()  # who earlier campaigns listed: the default churn population
BANK_STREAM, CHUNK_STREAM = 2, 3  # the campaign's random streams: [seed, 2], [seed, 3, k]


@dataclass(frozen=True, eq=False)
class BankCampaign:
    """The campaign's bank-wide arrays: RM skill, who calls an outlet's list, capacities."""

    config: Campaign
    seed: int
    customers: int
    months: tuple[int, int] | None  # window indices of the first and last cutoff
    skill: np.ndarray  # per RM: multiplies a persuadable's effect, mean 1
    duty_rm: np.ndarray  # per outlet: the RM who calls its list
    capacity: np.ndarray  # per list: the RMs', then the outlets'
    list_ids: np.ndarray  # per list: rm_id, then outlet_<outlet_id>
    dormant_below: float  # card payments a month under which a customer is dormant

    @classmethod
    def of(cls, config: SynthConfig, org: Org) -> BankCampaign | None:
        """The campaign of ``config`` on ``org``, ``None`` without one."""
        campaign = config.campaign
        if campaign is None:
            return None
        rng = np.random.default_rng([config.seed, BANK_STREAM])
        spread = campaign.skill_spread
        skill = np.exp(spread * rng.standard_normal(len(org.rms)) - spread**2 / 2)
        rm_capacity = org.rms["capacity"].to_numpy(dtype=float)
        outlet_capacity = campaign.outlet_capacity or int(np.median(rm_capacity))
        outlets = org.org["outlet_id"].astype(str).to_numpy()
        share = campaign.sleeping_dog_share
        dormant_below = ACTIVITY_MEDIAN * np.exp(ACTIVITY_SIGMA * ndtri(share)) if share else 0.0
        return cls(
            config=campaign,
            seed=config.seed,
            customers=config.customers,
            months=config.campaign_months,
            skill=skill,
            duty_rm=np.array([rms[0] for rms in org.rms_by_outlet]),
            capacity=np.concatenate([rm_capacity, np.full(len(outlets), float(outlet_capacity))]),
            list_ids=np.concatenate(
                [org.rms["rm_id"].astype(str).to_numpy(), OUTLET_LIST_PREFIX + outlets]
            ).astype(object),
            dormant_below=float(dormant_below),
        )

    def for_chunk(
        self,
        k: int,
        cust: CustomerChunk,
        n_window: int,
        maturing: tuple[int, ...],
        hidden_sigma: float,
    ) -> ChunkCampaign:
        """The campaign's state for chunk ``k`` (its own random stream): ``maturing`` are the
        catalogue's maturing products, ``hidden_sigma`` the s.d. of the hidden churn term."""
        rng = np.random.default_rng([self.seed, CHUNK_STREAM, k])
        return ChunkCampaign(self, rng, cust, n_window, tuple(maturing), hidden_sigma)


def response_types(
    structure: str,
    drivers_on: np.ndarray,
    drivers_months: np.ndarray,
    maturing_soon: np.ndarray,
    dormant: np.ndarray,
    hidden_high: np.ndarray,
    early_months: int,
) -> np.ndarray:
    """Each customer's response type (codes of ``RESPONSE_TYPES``) from what is on at a cutoff:
    the drivers and for how long (``drivers_months``), a deposit maturing within the horizon,
    dormancy and a high hidden term. Money that started moving out (to other banks or own
    accounts elsewhere) at most ``early_months`` ago can still be kept; after that it is gone."""
    n = len(dormant)
    if structure == "follows_risk":
        return np.full(n, PERSUADABLE, dtype=np.int8)
    moving = drivers_on[:, [OUTFLOW, DECLINE]]
    months = np.where(moving, drivers_months[:, [OUTFLOW, DECLINE]], 0).max(axis=1)
    early = moving.any(axis=1) & (months <= early_months)
    any_driver = drivers_on.any(axis=1) | maturing_soon
    lost = drivers_on[:, SALARY] | (moving.any(axis=1) & ~early) | (hidden_high & any_driver)
    persuadable = drivers_on[:, COMPLAINT] | drivers_on[:, NEGLECT] | maturing_soon | early
    sleeping = np.zeros(n, dtype=bool)
    dormant_kind = SLEEPING_DOG
    if structure == "sleeping_dogs_among_risky":
        sleeping, dormant_kind = drivers_on[:, OUTFLOW], SURE_THING
    types = np.where(~any_driver & dormant, dormant_kind, SURE_THING)
    types = np.where(persuadable, PERSUADABLE, types)
    types = np.where(lost, LOST_CAUSE, types)
    return np.where(sleeping, SLEEPING_DOG, types).astype(np.int8)


def call_effects(
    types: np.ndarray, skill: np.ndarray, config: Campaign
) -> tuple[np.ndarray, np.ndarray]:
    """(cut, added) per customer: a reached call turns a monthly hazard λ into
    1 − (1 − λ·(1 − cut))·(1 − added)."""
    cut = np.where(
        types == PERSUADABLE, np.minimum(config.persuadable_effect * skill, MAX_CUT), 0.0
    )
    added = np.where(types == SLEEPING_DOG, config.sleeping_dog_hazard, 0.0)
    return cut, added


def called_hazard(hazard: np.ndarray, cut: np.ndarray, added: np.ndarray) -> np.ndarray:
    """The monthly exit hazard of a reached customer."""
    return 1 - (1 - hazard * (1 - cut)) * (1 - added)


class ChunkCampaign:
    """The campaign in one chunk's simulation: types and effects at each cutoff, the lists
    from the first campaign cutoff on, and the realised calls that shape the exits.

    ``simulate`` calls :meth:`month` once a month, before the exit draw, and compares the
    draw with the hazard it returns.
    """

    def __init__(
        self,
        bank: BankCampaign,
        rng: np.random.Generator,
        cust: CustomerChunk,
        n_window: int,
        maturing: tuple[int, ...],
        sigma: float,
    ) -> None:
        self.bank, self.config, self.rng, self.cust = bank, bank.config, rng, cust
        n = len(cust.customer_id)
        self.n_window, self.maturing = n_window, maturing
        self.chunk_share = n / bank.customers
        self.dormant = cust.activity < bank.dormant_below
        self.hidden_high = cust.hidden_churn > self.config.lost_cause_hidden * sigma
        self.do_not_contact = cust.table["do_not_contact"].to_numpy(dtype=bool)
        self.aum = np.zeros((n, n_window))
        self.types = np.full((n, n_window), SURE_THING, dtype=np.int8)
        self.cut = np.zeros((n, n_window))
        self.added = np.zeros((n, n_window))
        self.active_until = np.full(n, -1)  # last month a reached call still acts on
        self.active_cut, self.active_added = np.zeros(n), np.zeros(n)
        self.assigned_until = np.full(n, -1)  # not listable again until after this cutoff
        self.assignments: list[dict[str, np.ndarray]] = []
        self.contacts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (cutoff, who, caller)

    def month(self, t: int, state: dict[str, np.ndarray], hazard: np.ndarray) -> np.ndarray:
        """Window month ``t`` of the simulation (``state``: alive, tenure, rm, drivers_on,
        drivers_months, held, maturity, aum as the data shows it): record the response types,
        run the month's lists, and return the realised exit hazards (the calls that reached
        a customer in the last three cutoffs act on them)."""
        if 0 <= t < self.n_window:
            self._effects(t, state)
            first, last = self.bank.months or (self.n_window, -1)
            if first <= t <= last:
                self._lists(t, state, hazard)
        acting = self.active_until >= t
        return np.where(acting, called_hazard(hazard, self.active_cut, self.active_added), hazard)

    def caller(self, rm: np.ndarray, who: np.ndarray | None = None) -> np.ndarray:
        """The RM who calls each customer (of ``who``, indices into the chunk, when given):
        their own, else their outlet's first RM."""
        outlet = self.cust.outlet if who is None else self.cust.outlet[who]
        return np.where(rm >= 0, rm, self.bank.duty_rm[outlet])

    def _effects(self, t: int, state: dict[str, np.ndarray]) -> None:
        self.aum[:, t] = state["aum"]
        held, maturity = state["held"], state["maturity"]
        soon = np.zeros(len(self.dormant), dtype=bool)
        for p in self.maturing:
            due = maturity[:, p]
            soon |= held[:, p] & (due > t) & (due <= t + HORIZON)
        types = response_types(
            self.config.structure,
            state["drivers_on"],
            state["drivers_months"],
            soon,
            self.dormant,
            self.hidden_high,
            self.config.persuadable_months,
        )
        skill = self.bank.skill[self.caller(state["rm"])]
        self.types[:, t] = types
        self.cut[:, t], self.added[:, t] = call_effects(types, skill, self.config)

    def _listable(self, t: int, state: dict[str, np.ndarray]) -> np.ndarray:
        aum = self.aum
        before = aum[:, t - 3 : t].mean(axis=1)
        return (
            state["alive"]
            & (state["tenure"] >= CHURN_RULE.min_tenure_months)
            & (aum[:, t - 2 : t + 1].mean(axis=1) >= CHURN_RULE.min_aum)
            & (aum[:, t] >= CHURN_RULE.leaving_ratio * before)
            & ~self.do_not_contact
            & (self.assigned_until < t)
        )

    def _score(self, t: int, hazard: np.ndarray) -> np.ndarray:
        """The earlier policy's ranking score (higher first)."""
        policy = self.config.policy
        if policy == "rule_of_thumb":  # the money that left over three months: decline × AUM
            return np.maximum(self.aum[:, t - 3] - self.aum[:, t], 0.0)
        if policy == "risk":  # a bank that knew each month's true hazard: risk × AUM
            return hazard * self.aum[:, t]
        return self.rng.random(len(hazard))

    def _lists(self, t: int, state: dict[str, np.ndarray], hazard: np.ndarray) -> None:
        rm = state["rm"]
        n_rms = len(self.bank.skill)
        lists = np.where(rm >= 0, rm, n_rms + self.cust.outlet)
        score = self._score(t, hazard)
        draws = self.rng.random((3, len(rm)))  # control, exploration, reach
        who = np.flatnonzero(self._listable(t, state))
        order = np.lexsort((who, -self.aum[who, t], -score[who], lists[who]))
        who = who[order]
        group, p_treat, within = self._draw(lists[who], draws[0][who], draws[1][who])
        if self.config.exploration_share == 0:  # nobody below the cut could have been called
            who, group, p_treat, within = (a[within] for a in (who, group, p_treat, within))
        assigned = who[group != NONE]
        self.assigned_until[assigned] = t + HORIZON - 1
        called = who[(group == TREATED) | (group == EXPLORE)]
        reached = called[draws[2][called] < self.config.reach]
        self.active_until[reached] = t + HORIZON - 1
        self.active_cut[reached] = self.cut[reached, t]
        self.active_added[reached] = self.added[reached, t]
        self.contacts.append((t, reached, self.caller(rm[reached], reached)))
        self.assignments.append(
            {
                "who": who,
                "cutoff": np.full(len(who), t, dtype=np.int16),
                "list": lists[who].astype(np.int32),
                "group": group,
                "p_treat": p_treat,
                "within": within,
                "score": score[who],
                "aum": self.aum[who, t],
            }
        )

    def _draw(self, lists: np.ndarray, u_control: np.ndarray, u_explore: np.ndarray):
        """Groups of the listable customers, sorted by list and rank: (group, p_treat,
        within the cut)."""
        config = self.config
        codes, starts, counts = np.unique(lists, return_index=True, return_counts=True)
        rank = np.arange(len(lists)) - np.repeat(starts, counts)
        slots = self.bank.capacity[codes] * self.chunk_share * config.capacity_share
        cut = np.floor((1 - config.exploration_share) * slots + 0.5)
        below = np.maximum(counts - cut, 0)
        q = np.minimum(
            config.max_explore_probability,
            config.exploration_share * slots / np.maximum(below, 1),
        )
        within = rank < np.repeat(cut, counts)
        q_each = np.repeat(q, counts)
        group = np.where(
            within,
            np.where(u_control < config.control_share, CONTROL, TREATED),
            np.where(u_explore < q_each, EXPLORE, NONE),
        ).astype(np.int8)
        p_treat = np.where(within, 1 - config.control_share, q_each)
        return group, p_treat, within

    # ------------------------------------------------------------------ outputs

    def assignment_frame(self, cutoffs: np.ndarray) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """The chunk's ``list_assignments`` rows without ``rank``, and the keys that rank
        them across chunks (:func:`global_ranks`)."""
        parts = self.assignments  # one per campaign cutoff, never none
        rows = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        frame = pd.DataFrame(
            {
                "customer_id": self.cust.customer_id[rows["who"]],
                "cutoff": cutoffs[rows["cutoff"]],
                "list_id": self.bank.list_ids[rows["list"]],
                "group": np.array(GROUPS, dtype=object)[rows["group"]],
                "p_treat": rows["p_treat"],
            }
        )
        keys = {k: rows[k] for k in ("cutoff", "list", "within", "score", "aum")}
        keys["customer_id"] = frame["customer_id"].to_numpy()
        return frame, keys


def global_ranks(keys: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Rank within each (list, cutoff) across chunks: those within the cut first, then by
    the policy's score, AUM and customer id; one array per chunk, in its rows' order."""
    joined = {k: np.concatenate([part[k] for part in keys]) for k in keys[0]}
    order = np.lexsort(
        (
            joined["customer_id"],
            -joined["aum"],
            -joined["score"],
            ~joined["within"],
            joined["list"],
            joined["cutoff"],
        )
    )
    group_key = joined["cutoff"][order].astype(np.int64) * 2**32 + joined["list"][order]
    starts = np.r_[0, np.flatnonzero(np.diff(group_key)) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts) + 1
    bounds = np.cumsum([len(part["cutoff"]) for part in keys])[:-1]
    return np.split(rank, bounds)
