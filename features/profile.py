"""A bank at a glance, computed with the feature build's own definitions.

What ``retain profile`` and ``retain demo`` print and the synthetic bank's statistical tests
check: customers by tier, the share of AUM held by the top 20%, monthly and 3-month churn among
eligible customers, the AUM change before churn, product holding rates, and — for a synthetic
bank — the mean true churn probability next to the realised rate. Eligibility, churn, tiers
and holding come from ``features.labels``, ``features.tiers`` and ``features.panel``: one
definition each, whatever the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.config import BankConfig
from features.contribution import aum_change_3m
from features.engine import open_warehouse
from features.labels import churn_eligible, churned
from features.panel import build_panel, holds, month_number
from features.products import resolve_products
from features.targets import CHURN
from features.tiers import tier_level


@dataclass(frozen=True)
class BankProfile:
    customers: int
    as_of: str
    tiers: pd.DataFrame  # tier, customers, share
    top20_aum_share: float
    # cutoff, eligible, monthly_churn, churn_3m (within the horizon)[, the truth's mean
    # probability of churn within the horizon: CHURN.truth(horizon_months)]
    churn_by_cutoff: pd.DataFrame
    aum_change_3m: pd.DataFrame  # churned, median_aum_change_3m, rows
    holding_rates: pd.DataFrame  # product, customers, rate
    horizon_months: int  # the churn horizon

    @property
    def monthly_churn(self) -> float:
        rates = self.churn_by_cutoff
        return float((rates["monthly_churn"] * rates["eligible"]).sum() / rates["eligible"].sum())

    def summary(self) -> dict:
        by_churn = self.aum_change_3m.set_index("churned")["median_aum_change_3m"]
        out = {
            "customers": self.customers,
            "as_of": self.as_of,
            "tiers": dict(
                zip(self.tiers["tier"], self.tiers["customers"].astype(int), strict=True)
            ),
            "top20_aum_share": round(self.top20_aum_share, 4),
            "monthly_churn_eligible": round(self.monthly_churn, 4),
            "median_aum_change_3m": {
                "churners": round(float(by_churn.get(True, float("nan"))), 4),
                "non_churners": round(float(by_churn.get(False, float("nan"))), 4),
            },
            "holding_rates": {
                p: round(float(r), 4)
                for p, r in zip(
                    self.holding_rates["product"], self.holding_rates["rate"], strict=True
                )
            },
        }
        truth = CHURN.truth(self.horizon_months)
        if truth in self.churn_by_cutoff:
            rates = self.churn_by_cutoff
            weights = rates["eligible"]
            out["churn_3m_realised"] = round(
                float((rates["churn_3m"] * weights).sum() / weights.sum()), 4
            )
            out["churn_3m_truth"] = round(float((rates[truth] * weights).sum() / weights.sum()), 4)
        return out


def profile_bank(location, config: BankConfig | None = None) -> BankProfile:
    config = config or BankConfig()
    _, wh = open_warehouse(location)
    config = resolve_products(wh.products, config)
    one_month = config.model_copy(
        update={"churn": config.churn.model_copy(update={"horizon_months": 1})}
    )
    panel = build_panel(wh, config)
    last_month = month_number(wh.balances.month.max()).as_scalar()
    horizon = config.churn.horizon_months
    panel = panel.mutate(
        eligible=churn_eligible(panel, config),
        churned=churned(panel, config),
        churned_1m=churned(panel, one_month),
        aum_change_3m=aum_change_3m(panel.aum),
        tier=tier_level(panel.aum, config.tiers),
        complete=panel.month_number + horizon <= last_month,
    )
    eligible = panel.filter(panel.eligible & panel.complete)
    # a truth that does not cover the configured horizon gives no truth figure
    truth, source = CHURN.truth(horizon), CHURN.truth_source(horizon)
    has_truth = wh.truth is not None and source in wh.truth.columns
    if has_truth:
        eligible = eligible.left_join(
            wh.truth.select("customer_id", "month", **{truth: source}), ["customer_id", "month"]
        )
    rows = eligible.select(
        "month", "churned", "churned_1m", "aum_change_3m", *([truth] if has_truth else [])
    ).to_pandas()
    rows["churned"] = rows["churned"].astype(bool)
    by_month = rows.groupby("month")
    churn_by_cutoff = pd.DataFrame(
        {
            "eligible": by_month.size(),
            "monthly_churn": by_month["churned_1m"].mean(),
            "churn_3m": by_month["churned"].mean(),
        }
    )
    if has_truth:
        churn_by_cutoff[truth] = by_month[truth].mean()
    churn_by_cutoff = churn_by_cutoff.rename_axis("cutoff").reset_index()
    known = rows[rows["aum_change_3m"].notna()]
    aum_change = (
        known.groupby("churned")["aum_change_3m"]
        .agg(median_aum_change_3m="median", rows="size")
        .reset_index()
    )
    last = panel.filter(panel.month_number == last_month).select("aum", "tier").to_pandas()
    counts = last["tier"].value_counts().reindex(range(len(config.tiers.names)), fill_value=0)
    tiers = pd.DataFrame(
        {
            "tier": list(config.tiers.names),
            "customers": counts.to_numpy(),
            "share": counts.to_numpy() / max(len(last), 1),
        }
    )
    aum = last["aum"].sort_values(ascending=False).to_numpy()
    top = aum[: int(round(0.2 * len(aum)))].sum()
    b = wh.balances
    held = b.filter(holds(b) & (month_number(b.month) == last_month))
    held = held.group_by("product").aggregate(customers=held.customer_id.nunique()).to_pandas()
    holding = pd.DataFrame({"product": list(config.product_codes)}).merge(
        held, on="product", how="left"
    )
    holding["customers"] = holding["customers"].fillna(0).astype(int)
    holding["rate"] = holding["customers"] / max(len(last), 1)
    months = wh.balances.month.max().to_pandas()
    return BankProfile(
        customers=len(last),
        as_of=pd.Timestamp(months).date().isoformat(),
        tiers=tiers,
        top20_aum_share=float(top / aum.sum()) if aum.sum() > 0 else 0.0,
        churn_by_cutoff=churn_by_cutoff,
        aum_change_3m=aum_change,
        holding_rates=holding.sort_values("rate", ascending=False, ignore_index=True),
        horizon_months=horizon,
    )
