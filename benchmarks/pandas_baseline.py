"""Five core features written the obvious way in pandas: the baseline a data scientist writes
first (load the tables, loop over cutoffs, filter, group by). Used by benchmarks/features.py.

Usage: python pandas_baseline.py WAREHOUSE FIRST_CUTOFF LAST_CUTOFF OUT.parquet
"""

from __future__ import annotations

import sys

import pandas as pd

from features.sources.files import read_table


def main(warehouse: str, first: str, last: str, out: str) -> None:
    balances = read_table(
        warehouse, "balances", ["customer_id", "month", "product", "avg_daily_balance"]
    )
    products = read_table(warehouse, "products")
    assets = set(products.loc[products["kind"] == "asset", "product"])
    balances = balances[balances["product"].isin(assets)]
    aum = balances.groupby(["customer_id", "month"], as_index=False)["avg_daily_balance"].sum()
    aum["month"] = pd.to_datetime(aum["month"])
    txns = read_table(warehouse, "transactions", ["customer_id", "ts", "amount", "direction"])
    complaints = read_table(warehouse, "complaints", ["customer_id", "ts"])
    frames = []
    for cutoff in pd.date_range(first, last, freq="ME"):
        window = aum[(aum["month"] > cutoff - pd.DateOffset(months=3)) & (aum["month"] <= cutoff)]
        row = window.groupby("customer_id")["avg_daily_balance"].mean().rename("aum_avg_3m")
        now = aum[aum["month"] == cutoff].set_index("customer_id")["avg_daily_balance"]
        before = aum[aum["month"] == cutoff - pd.offsets.MonthEnd(3)]
        before = before.set_index("customer_id")["avg_daily_balance"]
        change = (now / before - 1).rename("aum_change_3m")
        end = cutoff + pd.Timedelta(days=1)
        recent = txns[(txns["ts"] >= end - pd.DateOffset(months=3)) & (txns["ts"] < end)]
        count = recent.groupby("customer_id").size().rename("txn_count_3m")
        out_3m = recent[recent["direction"] == "out"].groupby("customer_id")["amount"].sum()
        year = complaints[
            (complaints["ts"] >= end - pd.DateOffset(months=12)) & (complaints["ts"] < end)
        ]
        n_complaints = year.groupby("customer_id").size().rename("complaints_12m")
        frame = pd.concat(
            [row, change, count, out_3m.rename("txn_amount_out_3m"), n_complaints], axis=1
        ).reindex(now.index)
        frames.append(frame.assign(cutoff=cutoff.date()).reset_index())
    pd.concat(frames, ignore_index=True).to_parquet(out)


if __name__ == "__main__":
    main(*sys.argv[1:5])
