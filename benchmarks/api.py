"""The scoring API under a steady open-loop load, on loopback: latency percentiles, throughput.

Starts `retain serve` (2 workers) on the project's MLflow store and `data/scores` (run
`make demo` first), adds a throw-away admin key, then for each scenario sends requests at a
fixed rate for a fixed time — latency is measured from each request's *scheduled* send time,
so a stall is not hidden by the client waiting (no coordinated omission):

- single: one customer's feature record, scores for every model + top-3 reasons;
- batch: 1,000 customers' feature records, scores for every model, no reasons — at a lower
  rate (default 5/s): 50 batches/s would be 50,000 customers and 60 MB of JSON a second,
  more than 2 cores shared between client and server can parse, let alone score.

Usage: python benchmarks/api.py [--rate 50] [--batch-rate 5] [--seconds 60] [--scores data/scores]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from common import ROOT, report, served

# the project's packages, not benchmarks/features.py next to this file
sys.path.insert(0, str(ROOT))


def records(features: pd.DataFrame, names: list[str]) -> list[dict]:
    out = []
    for row in features[["customer_id", *names]].itertuples(index=False):
        values = dict(zip(["customer_id", *names], row, strict=True))
        out.append(
            {
                k: (None if pd.isna(v) else (int(v) if k == "customer_id" else float(v)))
                for k, v in values.items()
            }
        )
    return out


async def open_loop(url: str, headers: dict, bodies: list[dict], rate: float, seconds: float):
    latencies, errors = [], 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    headers = {**headers, "Content-Type": "application/json"}
    # bodies are serialised once, up front: the client shares the 2 cores with the server
    bodies = [json.dumps(b).encode() for b in bodies]
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as c:
        start = time.perf_counter()
        total = int(rate * seconds)

        async def one(i: int) -> None:
            nonlocal errors
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                r = await c.post("/score", content=bodies[i % len(bodies)])
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - scheduled)
            errors += not ok

        await asyncio.gather(*(one(i) for i in range(total)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "requests": total,
        "errors": errors,
        "throughput_rps": total / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50, help="single-customer requests/s")
    parser.add_argument("--batch-rate", type=float, default=5, help="1,000-customer batches/s")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--scores", type=Path, default=ROOT / "data" / "scores")
    args = parser.parse_args()
    if not (args.scores / "features.parquet").exists():
        raise SystemExit(f"{args.scores} has no scored snapshot: run `make demo` first")
    from features.catalog import feature_names
    from training.dataset import products_in

    features = pd.read_parquet(args.scores / "features.parquet")
    names = feature_names(products_in(features))
    with served(args.scores, prefix="retain-api-bench-") as service:
        url = service["url"]
        headers = {"Authorization": f"Bearer {service['key']}"}
        # customers the churn model is for (eligible at the cutoff): the others may lack
        # inputs the models need, which the API rightly refuses with 422
        eligible = features[features["eligible_churn"].fillna(False).astype(bool)]
        sample = eligible.sample(min(len(eligible), 2_000), random_state=0)
        singles = [{"customers": [r], "explain": True} for r in records(sample, names)]
        batches = [
            {"customers": records(sample.iloc[i : i + 1000], names), "explain": False}
            for i in (0, 1000)
        ]
        asyncio.run(open_loop(url, headers, singles, 20, 3))  # warm the workers up
        results = {}
        for name, bodies, rate in (
            ("single + reasons", singles, args.rate),
            ("batch of 1,000", batches, args.batch_rate),
        ):
            results[name] = asyncio.run(open_loop(url, headers, bodies, rate, args.seconds))
            results[name]["rate"] = rate
    rows = [
        [
            name,
            f"{r['rate']:g}/s × {args.seconds:.0f}s",
            r["requests"],
            r["errors"],
            f"{r['throughput_rps']:.1f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
        ]
        for name, r in results.items()
    ]
    report(
        "api",
        ["scenario", "load", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms"],
        rows,
        {"rate": args.rate, "seconds": args.seconds, "results": results},
    )
    print("target: single customers p99 ≤ 50 ms with 0 errors")


if __name__ == "__main__":
    main()
