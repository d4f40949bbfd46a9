"""The monthly run (`retain run`) on a large bank: seconds and peak RSS per step.

Each repeat is a fresh `retain run --force` in a child process (wall time and peak RSS of the
whole process tree), into its own runs folder; the per-step figures come from the run's own
`run.json` (seconds, peak RSS of the process during the step). Target (docs/design.md §9):
features at one cutoff → every model → reasons for list candidates → lists and report within 2
minutes on 2 cores for 1M customers — the features and score steps; validation and monitoring
are reported beside them (monitoring's own target is `benchmarks/monitor.py`'s).

The champion models must be in the MLflow store the child sees (``MLFLOW_TRACKING_URI`` or
``--tracking-uri``); train them on a smaller bank of the same generator (``retain demo``).

Usage: python benchmarks/monthly.py --bank /path/to/bank1m [--cutoff 2024-12-31]
       [--repeats 2] [--runs-dir DIR] [--tracking-uri sqlite:///…/mlflow.db]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import median_of, report, run_measured

TARGET_SECONDS = 120
# docs/design.md §9: features → models → reasons → lists, report
TARGET_STEPS = ("features", "score")


def command(bank: Path, cutoff: str, runs: Path, summary: Path) -> str:
    args = ["run", "--cutoff", cutoff, "--warehouse", str(bank), "--runs-dir", str(runs)]
    args += ["--force", "--json", str(summary)]
    # exit codes 1 and 2 come back as the run's status in run.json, not as a failed child
    return f"from retain.cli import app; app({args!r}, standalone_mode=False)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--cutoff", default="2024-12-31")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    runs_root = args.runs_dir or Path(tempfile.mkdtemp(prefix="retain-monthly-"))
    whole, per_step, statuses = [], {}, []
    for repeat in range(args.repeats):
        runs, summary = runs_root / f"repeat-{repeat}", runs_root / f"repeat-{repeat}.json"
        whole.append(run_measured(command(args.bank, args.cutoff, runs, summary)))
        payload = json.loads(summary.read_text())
        statuses.append(payload["status"])
        for step in payload["steps"]:
            per_step.setdefault(step["name"], []).append(step)
    rows, result = [], {"bank": str(args.bank), "cutoff": args.cutoff, "runs": args.repeats}
    for name, steps in per_step.items():
        seconds = statistics.median(s["seconds"] or 0 for s in steps)
        rss = statistics.median(s["peak_rss_mb"] or 0 for s in steps)
        rows.append([name, steps[-1]["status"], f"{seconds:.1f}", f"{rss:,.0f}"])
        result[name] = {"seconds": seconds, "peak_rss_mb": rss, "status": steps[-1]["status"]}
    target = sum(result[s]["seconds"] for s in TARGET_STEPS if s in result)
    overall = median_of(whole)
    verdict = "meets" if target <= TARGET_SECONDS else "MISSES"
    rows.append(["features+score", f"{verdict} ≤ {TARGET_SECONDS}s", f"{target:.1f}", ""])
    rows.append(
        [
            "whole command",
            ", ".join(statuses),
            f"{overall['seconds']:.1f}",
            f"{overall['peak_rss_mb']:,.0f}",
        ]
    )
    result.update(target_steps_seconds=target, target_seconds=TARGET_SECONDS, command=overall)
    result["statuses"] = statuses
    report(
        "monthly",
        ["step", "status", "seconds (median)", "peak RSS MB (median)"],
        rows,
        result,
    )


if __name__ == "__main__":
    sys.exit(main())
