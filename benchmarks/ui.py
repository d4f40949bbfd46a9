"""The RM page on loopback: my-list page server time, and outcome writes per second on SQLite.

Starts `retain serve` (2 workers) on the project's MLflow store and a scored snapshot (default
`data/scores`; run `make demo` first), logs in with a throw-away admin key, then:

- my list: the three longest retention lists (an RM's or an outlet's, up to 400 rows)
  requested ``--runs`` times one after another; the page's own ``Server-Timing`` header gives
  the server time (routing, list building, rendering), the client measures the round trip;
- outcome writes: ``OutcomeStore.record`` on a fresh SQLite file (WAL), one write per
  transaction, as the page and the API write them; and the page's form post end to end.

Usage: python benchmarks/ui.py [--runs 60] [--writes 1000] [--scores data/scores] [--config F]

Lists on the demo bank hold at most ~30 rows (nobody below the minimum risk is listed); to
measure 400-row pages, score with `[lists] min_risk = 0` and `--k 400` and pass that config.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from common import ROOT, report, served

sys.path.insert(0, str(ROOT))

TARGET_MS = 200


def log_in(client: httpx.Client, key: str) -> None:
    page = client.get("/ui/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = client.post("/ui/login", data={"key": key, "csrf": csrf})
    if answer.status_code != 303:
        raise SystemExit(f"login failed: {answer.status_code}")


def server_ms(response: httpx.Response) -> float:
    return float(re.search(r"dur=([\d.]+)", response.headers["server-timing"]).group(1))


def page_times(client: httpx.Client, rm_id: str, runs: int) -> tuple[list[float], list[float], int]:
    server, round_trip, rows = [], [], 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get("/ui/list", params={"rm_id": rm_id, "lang": "zh"})
        round_trip.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        server.append(server_ms(response))
        rows = response.text.count("data-customer-id=")
    return server, round_trip, rows


def store_writes(count: int) -> float:
    from serving.outcomes import OutcomeStore

    store = OutcomeStore(Path(tempfile.mkdtemp(prefix="retain-outcomes-")) / "outcomes.db")
    store.record(
        request_id="warm",
        customer_id=0,
        rm_id="RM0",
        channel="call",
        reached=True,
        result="stays",
        recorded_by="bench",
        recorded_key="0" * 64,
    )
    started = time.perf_counter()
    for i in range(count):
        store.record(
            request_id=f"r{i}",
            customer_id=i,
            rm_id="RM0",
            channel="call",
            reached=True,
            result="stays",
            recorded_by="bench",
            recorded_key="0" * 64,
        )
    return count / (time.perf_counter() - started)


def form_writes(client: httpx.Client, customer_id, count: int) -> float:
    page = client.get(f"/ui/customers/{customer_id}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    started = time.perf_counter()
    for i in range(count):
        answer = client.post(
            f"/ui/customers/{customer_id}/outcomes",
            data={
                "csrf": csrf,
                "request_id": f"bench-{i}",
                "channel": "call",
                "reached": "yes",
                "result": "stays",
            },
        )
        if answer.status_code != 303:
            raise SystemExit(f"outcome post failed: {answer.status_code}")
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60, help="requests per list")
    parser.add_argument("--writes", type=int, default=1000, help="outcomes written to SQLite")
    parser.add_argument("--form-writes", type=int, default=100)
    parser.add_argument("--scores", type=Path, default=ROOT / "data" / "scores")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the configuration the snapshot was scored with (its list policy)",
    )
    args = parser.parse_args()
    if not (args.scores / "scores.parquet").exists():
        raise SystemExit(f"{args.scores} has no scored snapshot: run `make demo` first")
    with served(
        args.scores,
        "--outcomes",
        str(Path(tempfile.mkdtemp(prefix="retain-ui-outcomes-")) / "outcomes.db"),
        *(["--config", str(args.config)] if args.config else []),
        prefix="retain-ui-bench-",
    ) as service:
        url, key = service["url"], service["key"]
        scores = pd.read_parquet(args.scores / "scores.parquet")
        listed = scores[scores["list_kind"] == "retention"]
        longest = listed["list_id"].value_counts().index[:3].tolist()  # RMs' or outlets' lists
        rows, payload = [], {"target_ms": TARGET_MS, "lists": {}}
        with httpx.Client(base_url=url, timeout=60) as client:
            log_in(client, key)
            for rm_id in longest:
                page_times(client, rm_id, 3)  # warm up both workers' caches
                timings, round_trip, count = page_times(client, rm_id, args.runs)
                p50, p95 = np.percentile(timings, 50), np.percentile(timings, 95)
                rt95 = np.percentile(round_trip, 95)
                rows.append(
                    [
                        f"my list {rm_id}",
                        count,
                        f"{p50:.0f}",
                        f"{p95:.0f}",
                        f"{rt95:.0f}",
                        "yes" if p95 <= TARGET_MS else "NO",
                    ]
                )
                payload["lists"][rm_id] = {
                    "rows": count,
                    "server_p50_ms": p50,
                    "server_p95_ms": p95,
                    "round_trip_p95_ms": rt95,
                }
            customer = listed.loc[listed["list_id"] == longest[0], "customer_id"].iloc[0]
            payload["form_writes_per_s"] = form_writes(client, customer, args.form_writes)
        payload["sqlite_writes_per_s"] = store_writes(args.writes)
        rows.append(
            [
                "outcome writes, SQLite store",
                args.writes,
                "",
                "",
                "",
                f"{payload['sqlite_writes_per_s']:,.0f}/s",
            ]
        )
        rows.append(
            [
                "outcome writes, page form",
                args.form_writes,
                "",
                "",
                "",
                f"{payload['form_writes_per_s']:,.0f}/s",
            ]
        )
        report(
            "ui",
            [
                "scenario",
                "rows",
                "server p50 ms",
                "server p95 ms",
                "round trip p95 ms",
                f"p95 ≤ {TARGET_MS} ms / rate",
            ],
            rows,
            payload,
        )


if __name__ == "__main__":
    main()
