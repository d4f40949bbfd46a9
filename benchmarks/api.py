"""The scoring API under open-loop load, on loopback: capacity, and what happens past it.

Starts `retain serve` (2 workers) on the project's MLflow store and `data/scores` (run
`make demo` first) with a throw-away admin key. The load comes from benchmarks/loadgen.py, a
client in its own process (so its CPU is its own and measured: CPU seconds / wall), sending
requests at fixed scheduled times whatever the answers; latency counts from the scheduled
time, so a stall on either side is not hidden (no coordinated omission).

- single: one customer's feature record to POST /v1/score, scores for every model + top-3
  reasons. Without ``--rate`` the benchmark first ramps the offered rate (×1.2 a step) to find
  the capacity — the highest rate answered cleanly: every request 200 but ≤ 0.5% shed, no
  errors, p99 ≤ 100 ms — then offers 1×, 2× and 4× the capacity (median of ``--repeats``
  runs each). With ``--rate R1,R2,…`` it offers those rates (capacity: the highest clean one).
  For each rate: goodput (200s/s), rejections/s (503/429), errors (anything else, timeouts),
  p50/p99 of the accepted, p99 of the rejections, client and service CPU.
- batch: 1,000 customers' feature records, scores for every model, no reasons, at
  ``--batch-rate`` (default 5/s; 0 to skip).

The worker processes are listed before and after: a worker that died (and was replaced)
shows as a changed PID; /livez and /readyz must answer 200 after the sweep.

With ``--proxy`` the load goes through the front proxy (deploy/nginx.conf on Debian's nginx,
`make nginx`), started on loopback in front of the service and passing on at most
``--proxy-per-worker`` (default: what a worker's own admission control holds) × workers
requests at once; the rest it answers 503 itself. Each run then also says how many requests
the workers turned away themselves (their ``retain_requests_shed_total``) and the proxy's CPU.
The results go to results/api_proxy.json unless ``--name`` says otherwise.

Usage: python benchmarks/api.py [--rate 100,200,400] [--seconds 15] [--repeats 3]
       [--batch-rate 5] [--scores data/scores] [--proxy [--proxy-per-worker N]]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import psutil
from common import ROOT, free_port, report, served

# the project's packages, not benchmarks/features.py next to this file
sys.path.insert(0, str(ROOT))

P99_TARGET_MS = 100
CLEAN_SHED = 0.005  # a request shed now and then at the knee is not a saturated service
LOADGEN = Path(__file__).resolve().parent / "loadgen.py"


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


def workers(pid: int | None) -> dict[int, float]:
    """A process and its descendants (the service: BentoML's arbiter and workers; the proxy:
    nginx's master and worker): pid → CPU seconds so far."""
    if pid is None:
        return {}
    root = psutil.Process(pid)
    out = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            out[process.pid] = times.user + times.system
        except psutil.Error:
            pass
    return out


def worker_pids(pid: int) -> set[int]:
    root = psutil.Process(pid)
    return {p.pid for p in root.children(recursive=True) if any("worker" in a for a in p.cmdline())}


def shed_by_service(service: dict) -> float:
    """Requests the workers turned away themselves so far (their /metrics, asked directly)."""
    headers = {"Authorization": f"Bearer {service['key']}"}  # the admin key reads /metrics
    text = httpx.get(service["direct_url"] + "/metrics", headers=headers, timeout=10).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("retain_requests_shed_total")
    )


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after.get(p, c) - c for p, c in before.items())


def offer(service: dict, bodies: Path, rate: float, seconds: float, timeout: float = 10) -> dict:
    """One open-loop run from a fresh client process; figures of that run."""
    spec = {
        "url": service["url"],
        "path": "/v1/score",
        "headers": {"Authorization": f"Bearer {service['key']}"},
        "bodies": str(bodies),
        "rate": rate,
        "seconds": seconds,
        "timeout": timeout,
    }
    cpu_before = workers(service["pid"])
    proxy_before = workers(service.get("proxy_pid"))
    shed_before = shed_by_service(service)
    done = subprocess.run(
        [sys.executable, str(LOADGEN)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    cpu_after = workers(service["pid"])
    proxy_after = workers(service.get("proxy_pid"))
    shed_after = shed_by_service(service)
    raw = json.loads(done.stdout)
    wall = raw["wall_seconds"]
    ok, shed = np.array(raw["ok"]) * 1000, np.array(raw["rejected"]) * 1000
    errors = sum(raw["errors"].values())

    def pct(values, q):
        return float(np.percentile(values, q)) if len(values) else None

    return {
        "offered_rps": rate,
        "requests": raw["requests"],
        "accepted": len(ok),
        "rejected": len(shed),
        "errors": errors,
        "error_kinds": raw["errors"],
        "goodput_rps": len(ok) / wall,
        "rejected_rps": len(shed) / wall,
        "accepted_p50_ms": pct(ok, 50),
        "accepted_p99_ms": pct(ok, 99),
        "accepted_max_ms": float(ok.max()) if len(ok) else None,
        "rejected_p50_ms": pct(shed, 50),
        "rejected_p99_ms": pct(shed, 99),
        "rejected_without_retry_after": raw["rejected_without_retry_after"],
        "rejected_by_service": shed_after - shed_before,  # the rest, by the proxy (if any)
        "client_cpu_pct": 100 * raw["client_cpu_seconds"] / wall,
        "service_cpu_pct": 100 * cpu_used(cpu_before, cpu_after) / wall,
        "proxy_cpu_pct": 100 * cpu_used(proxy_before, proxy_after) / wall,
        "client_send_lag_ms": 1000 * raw["send_lag_seconds"],
        "connections": raw["connections"],
        "wall_seconds": wall,
    }


def clean(run: dict) -> bool:
    return (
        run["errors"] == 0
        and run["rejected"] <= CLEAN_SHED * run["requests"]
        and run["accepted_p99_ms"] is not None
        and run["accepted_p99_ms"] <= P99_TARGET_MS
    )


def median_run(runs: list[dict]) -> dict:
    """Per figure, the median over repeats (counts included); the runs kept alongside."""
    out = {}
    for key, value in runs[0].items():
        values = [r[key] for r in runs if r[key] is not None]
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        out[key] = statistics.median(values) if numeric and values else value
    out["error_kinds"] = {k: v for r in runs for k, v in r["error_kinds"].items()}
    out["runs"] = runs
    return out


def ramp(service, bodies, start: float, step_seconds: float) -> tuple[float, list[dict]]:
    """Raise the rate ×1.2 until a step is not clean, then bisect once between the last clean
    and the first unclean rate; the capacity is the highest clean rate."""
    steps, rate, good, bad = [], start, None, None
    while bad is None:
        run = offer(service, bodies, rate, step_seconds)
        steps.append(run)
        print(_line("ramp", run), flush=True)
        if clean(run):
            good, rate = rate, rate * 1.2
        else:
            bad = rate
        time.sleep(1)
    if good is None:
        raise SystemExit(f"not clean even at {start:g} req/s: lower --start")
    middle = (good + bad) / 2
    run = offer(service, bodies, middle, step_seconds)
    steps.append(run)
    print(_line("ramp", run), flush=True)
    return (middle if clean(run) else good), steps


def _line(what: str, r: dict) -> str:
    return (
        f"{what} {r['offered_rps']:.0f}/s: goodput {r['goodput_rps']:.1f}/s, "
        f"shed {r['rejected']}, errors {r['errors']}, p99 accepted {_ms(r['accepted_p99_ms'])}, "
        f"p99 shed {_ms(r['rejected_p99_ms'])}, client CPU {r['client_cpu_pct']:.0f}%"
    )


def _ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", help="offered single-customer rates, e.g. 100,200,400")
    parser.add_argument("--capacity", type=float, help="no ramp: offer 1×, 2×, 4× this rate")
    parser.add_argument("--seconds", type=float, default=15, help="per rate and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--start", type=float, default=40, help="first rate of the ramp")
    parser.add_argument("--ramp-seconds", type=float, default=6)
    parser.add_argument("--batch-rate", type=float, default=5, help="1,000-customer batches/s")
    parser.add_argument("--scores", type=Path, default=ROOT / "data" / "scores")
    parser.add_argument("--proxy", action="store_true", help="through nginx (deploy/nginx.conf)")
    parser.add_argument("--proxy-per-worker", type=int, help="requests at once per worker")
    parser.add_argument("--name", help="results/<name>.json (default api, or api_proxy)")
    args = parser.parse_args()
    args.name = args.name or ("api_proxy" if args.proxy else "api")
    if not (args.scores / "features.parquet").exists():
        raise SystemExit(f"{args.scores} has no scored snapshot: run `make demo` first")
    return args


def write_bodies(scores: Path) -> tuple[Path, Path]:
    """Single-customer (with reasons) and 1,000-customer request bodies, one JSON a line,
    serialised once up front: the client shares the 2 cores with the server."""
    from features.catalog import feature_names
    from features.targets import ELIGIBLE_CHURN
    from training.dataset import products_in

    features = pd.read_parquet(scores / "features.parquet")
    names = feature_names(products_in(features))
    # customers the churn model is for (eligible at the cutoff): the others may lack inputs
    # the models need, which the API rightly refuses with 422
    eligible = features[features[ELIGIBLE_CHURN].fillna(False).astype(bool)]
    sample = eligible.sample(min(len(eligible), 2_000), random_state=0)
    folder = Path(tempfile.mkdtemp(prefix="retain-api-load-"))
    singles, batches = folder / "singles.jsonl", folder / "batches.jsonl"
    singles.write_text(
        "".join(
            json.dumps({"customers": [r], "explain": True}) + "\n" for r in records(sample, names)
        )
    )
    batches.write_text(
        "".join(
            json.dumps({"customers": records(sample.iloc[i : i + 1000], names), "explain": False})
            + "\n"
            for i in (0, 1000)
        )
    )
    return singles, batches


@contextmanager
def fronted(service: dict, proxy: bool, per_worker: int | None) -> Iterator[dict]:
    """The service as the client sees it: directly, or through nginx on a free loopback port
    passing on at most ``per_worker`` × workers requests at once."""
    service = {**service, "direct_url": service["url"]}
    if not proxy:
        yield service
        return
    from deploy.proxy import per_worker_default, start

    slots = len(worker_pids(service["pid"])) * (per_worker or per_worker_default())
    upstream = urlsplit(service["url"]).netloc
    nginx = start(f"127.0.0.1:{free_port()}", upstream, slots)
    try:
        yield {**service, "url": nginx.url, "proxy_pid": nginx.process.pid, "slots": slots}
    finally:
        nginx.stop()


def sweep(service: dict, singles: Path, args) -> tuple[list[dict], float | None, list[dict]]:
    """The offered rates (``--rate``, 1/2/4 × ``--capacity``, or 1/2/4 × a ramp's capacity),
    median of ``--repeats`` runs each: (results, capacity, ramp steps)."""
    steps, capacity = [], args.capacity
    if args.rate:
        rates = [float(r) for r in args.rate.split(",")]
    else:
        if capacity is None:
            capacity, steps = ramp(service, singles, args.start, args.ramp_seconds)
            print(f"capacity: {capacity:.0f} req/s", flush=True)
        rates = [capacity, 2 * capacity, 4 * capacity]
    results = []
    for rate in rates:
        runs = []
        for _ in range(args.repeats):
            runs.append(offer(service, singles, rate, args.seconds))
            print(_line("run", runs[-1]), flush=True)
            time.sleep(1)
        results.append(median_run(runs))
    if args.rate:
        good = [r["offered_rps"] for r in results if clean(r)]
        capacity = max(good) if good else None
    for r in results:
        r["times_capacity"] = r["offered_rps"] / capacity if capacity else None
        r["goodput_of_capacity"] = r["goodput_rps"] / capacity if capacity else None
    return results, capacity, steps


COLUMNS = [
    "offered req/s",
    "goodput req/s",
    "shed req/s (by workers)",
    "errors",
    "p50 ok ms",
    "p99 ok ms",
    "p99 shed ms",
    "client CPU",
    "service CPU",
    "proxy CPU",
]


def row(r: dict, offered: str | None = None) -> list:
    times, share = r.get("times_capacity"), r.get("goodput_of_capacity")
    return [
        offered or f"{r['offered_rps']:.0f}" + (f" ({times:.0f}×)" if times else ""),
        f"{r['goodput_rps']:.1f}" + (f" ({100 * share:.0f}%)" if share else ""),
        f"{r['rejected_rps']:.1f} ({r['rejected_by_service']:.0f})",
        r["errors"],
        _ms(r["accepted_p50_ms"]),
        _ms(r["accepted_p99_ms"]),
        _ms(r["rejected_p99_ms"]),
        f"{r['client_cpu_pct']:.0f}%",
        f"{r['service_cpu_pct']:.0f}%",
        f"{r['proxy_cpu_pct']:.0f}%",
    ]


def main() -> None:
    from serving.api.shedding import Limits

    args = arguments()
    singles, batches = write_bodies(args.scores)
    load_before = os.getloadavg()
    with (
        served(args.scores, prefix="retain-api-bench-") as bare,
        fronted(bare, args.proxy, args.proxy_per_worker) as service,
    ):
        before = worker_pids(service["pid"])
        offer(service, singles, 20, 3)  # warm the workers up
        results, capacity, steps = sweep(service, singles, args)
        batch = None
        if args.batch_rate > 0:
            batch = offer(service, batches, args.batch_rate, args.seconds, timeout=30)
            print(_line("batch", batch), flush=True)
        after = worker_pids(service["pid"])
        health = {
            path: httpx.get(service["url"] + path, timeout=5).status_code
            for path in ("/livez", "/readyz")
        }
    rows = [row(r) for r in results]
    if batch:
        rows.append(row(batch, f"batch of 1,000 at {args.batch_rate:g}/s"))
    died = sorted(before - after)
    report(
        args.name,
        COLUMNS,
        rows,
        {
            "capacity_rps": capacity,
            "criteria": {"accepted_p99_ms": P99_TARGET_MS, "shed_at_most": CLEAN_SHED},
            "limits": Limits.from_env().__dict__,
            "proxy_slots": service.get("slots"),
            "seconds": args.seconds,
            "repeats": args.repeats,
            "results": results,
            "ramp": steps,
            "batch": batch,
            "workers_before": sorted(before),
            "workers_after": sorted(after),
            "workers_died": died,
            "health_after": health,
            # other work on the machine during the run (1-minute load average, 2 cores)
            "loadavg_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        },
    )
    via = f"through nginx ({service['slots']} at once)" if args.proxy else "direct"
    print(
        f"{via}: capacity {_ms(capacity)} req/s; workers {len(before)} before, "
        f"{len(died)} died; after the load /livez {health['/livez']}, /readyz {health['/readyz']}"
    )
    print(
        "targets at 2× capacity: goodput ≥ 80% of capacity, accepted p99 ≤ 100 ms, "
        "rejections p99 ≤ 50 ms; at 4×: goodput ≥ 80% of capacity; no worker dies"
    )


if __name__ == "__main__":
    main()
