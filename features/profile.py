"""A bank at a glance, straight from the warehouse (DuckDB SQL over the parquet files).

What ``retain demo`` prints and the synthetic bank's statistical tests check: customers by
tier, the share of AUM held by the top 20%, monthly and 3-month churn among eligible
customers, the AUM change before churn, product holding rates, and — for a synthetic bank —
the mean true churn probability next to the realised rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from features.config import BankConfig
from features.sources.files import TRUTH_TABLE, has_table, table_glob


@dataclass(frozen=True)
class BankProfile:
    customers: int
    as_of: str
    tiers: pd.DataFrame  # tier, customers, share
    top20_aum_share: float
    churn_by_cutoff: pd.DataFrame  # cutoff, eligible, monthly_churn, churn_3m[, truth_p_churn_3m]
    aum_change_3m: pd.DataFrame  # churned, median_aum_change_3m, rows
    holding_rates: pd.DataFrame  # product, customers, rate

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
        if "truth_p_churn_3m" in self.churn_by_cutoff:
            rates = self.churn_by_cutoff
            weights = rates["eligible"]
            out["churn_3m_realised"] = round(
                float((rates["churn_3m"] * weights).sum() / weights.sum()), 4
            )
            out["churn_3m_truth"] = round(
                float((rates["truth_p_churn_3m"] * weights).sum() / weights.sum()), 4
            )
        return out


def _tier_case(config: BankConfig, column: str) -> str:
    ladder = config.tiers
    whens = " ".join(
        f"when {column} < {bound} then '{name}'"
        for name, bound in zip(ladder.names, ladder.bounds, strict=False)
    )
    return f"case {whens} else '{ladder.names[-1]}' end"


def profile_bank(warehouse: Path, config: BankConfig | None = None) -> BankProfile:
    config = config or BankConfig()
    churn = config.churn
    con = duckdb.connect()
    src = {t: table_glob(warehouse, t) for t in ("balances", "products", "customers")}
    con.execute(f"""
        create view balances as select * from read_parquet('{src["balances"]}');
        create view products as select * from read_parquet('{src["products"]}');
        create view customers as select * from read_parquet('{src["customers"]}');
        create table monthly_aum as
        select c.customer_id, m.month, c.open_date, coalesce(a.aum, 0) as aum
        from customers c
        cross join (select distinct month from balances) m
        left join (
            select customer_id, month, sum(avg_daily_balance) as aum
            from balances join products using (product)
            where kind = 'asset' group by all
        ) a on a.customer_id = c.customer_id and a.month = m.month
        where c.open_date <= m.month;
        create table windows as
        select *,
            avg(aum) over w3 as aum_avg_3m,
            avg(aum) over prev3 as aum_avg_prev_3m,
            lag(aum, 3) over w as aum_3m_ago,
            lead(aum, 1) over w as aum_next_1m,
            lead(aum, {churn.horizon_months}) over w as aum_end_horizon,
            count(*) over prev3 as months_before
        from monthly_aum
        window w as (partition by customer_id order by month),
            w3 as (w rows between 2 preceding and current row),
            prev3 as (w rows between 3 preceding and 1 preceding);
        create table eligible as
        select *, aum_end_horizon < {churn.attrition_ratio} * aum_avg_3m as churned
        from windows
        where open_date <= month - interval {churn.min_tenure_months} month
          and months_before = 3
          and aum_avg_3m >= {churn.min_aum}
          and aum >= {churn.leaving_ratio} * aum_avg_prev_3m
          and aum_end_horizon is not null;
    """)
    truth = has_table(warehouse, TRUTH_TABLE)
    truth_join, truth_col = "", ""
    if truth:
        truth_files = table_glob(warehouse, TRUTH_TABLE)
        con.execute(f"create view truth as select * from read_parquet('{truth_files}')")
        truth_join = "left join truth t using (customer_id, month)"
        truth_col = ", avg(t.p_churn_3m) as truth_p_churn_3m"
    churn_by_cutoff = con.execute(f"""
        select month as cutoff, count(*) as eligible,
            avg((aum_next_1m < {churn.attrition_ratio} * aum_avg_3m)::int) as monthly_churn,
            avg(churned::int) as churn_3m {truth_col}
        from eligible {truth_join} group by month order by month
    """).df()
    aum_change = con.execute("""
        select churned, median(aum / aum_3m_ago - 1) as median_aum_change_3m, count(*) as rows
        from eligible where aum_3m_ago > 0 group by churned order by churned
    """).df()
    last = con.execute("select max(month) from monthly_aum").fetchone()[0]
    tier_sql = _tier_case(config, "aum")
    tiers = con.execute(
        f"""
        select {tier_sql} as tier, count(*) as customers, count(*) / sum(count(*)) over () as share
        from monthly_aum where month = ? group by 1
    """,
        [last],
    ).df()
    order = {name: i for i, name in enumerate(config.tiers.names)}
    tiers = tiers.sort_values("tier", key=lambda s: s.map(order), ignore_index=True)
    top20 = con.execute(
        """
        with ranked as (
            select aum, row_number() over (order by aum desc) as rank, count(*) over () as n
            from monthly_aum where month = ?
        )
        select sum(aum) filter (where rank <= 0.2 * n) / sum(aum) from ranked
    """,
        [last],
    ).fetchone()[0]
    customers = con.execute("select count(*) from monthly_aum where month = ?", [last]).fetchone()[
        0
    ]
    holding = con.execute(
        """
        select p.product, count(distinct b.customer_id) as customers,
            count(distinct b.customer_id) / ? as rate
        from products p left join balances b
            on b.product = p.product and b.month = ? and b.status = 'open'
        group by p.product order by rate desc
    """,
        [customers, last],
    ).df()
    return BankProfile(
        customers=int(customers),
        as_of=pd.Timestamp(last).date().isoformat(),
        tiers=tiers,
        top20_aum_share=float(top20),
        churn_by_cutoff=churn_by_cutoff,
        aum_change_3m=aum_change,
        holding_rates=holding,
    )
