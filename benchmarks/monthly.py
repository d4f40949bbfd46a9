"""The monthly run (`retain run`) on a large bank: seconds, CPU seconds and peak RSS per step.

Each repeat is a fresh `retain run --force` in a child process (wall time, CPU time and peak
RSS of the whole process tree), into its own runs folder; the per-step figures come from the
run's own `run.json` (seconds, CPU seconds, peak RSS of the process during the step), and the
score step's own split (scoring, reasons, offers and assignment, growth reasons, lists and
files, the customers' past) from its `summary.json`. Targets (docs/design.md §9), by the
bank's size: 1M customers, the whole command (validate → features → score → monitor) within 2
minutes on 2 cores; 10M, within 20 minutes and 12 GB peak RSS. The load average before and
after each run is reported beside the figures: on a machine shared with other jobs the seconds
move with it, the CPU seconds much less.

The champion models must be in the MLflow store the child sees (``MLFLOW_TRACKING_URI`` or
``--tracking-uri``); train them on a smaller bank of the same generator (``retain demo``).

``--config`` runs with a bank's configuration (e.g. ``[lists] explain_above``), as ``retain run
--config`` does.

Usage: python benchmarks/monthly.py --bank /path/to/bank1m [--cutoff 2024-12-31]
       [--repeats 2] [--runs-dir DIR] [--tracking-uri sqlite:///…/mlflow.db] [--config TOML]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from common import median_of, report, run_measured

# docs/design.md §9: (customers up to, whole command seconds, peak RSS MB or None)
TARGETS = ((2_000_000, 120, None), (float("inf"), 1_200, 12 * 1024))


def targets(bank: Path) -> tuple[int, int | None]:
    """The whole command's seconds and peak RSS (MB) targets for the bank's size."""
    parts = sorted((bank / "customers").glob("*.parquet")) or [bank / "customers.parquet"]
    customers = sum(pq.read_metadata(part).num_rows for part in parts)
    return next((seconds, mb) for size, seconds, mb in TARGETS if customers <= size)


def command(bank: Path, cutoff: str, runs: Path, summary: Path, config: Path | None) -> str:
    args = ["run", "--cutoff", cutoff, "--warehouse", str(bank), "--runs-dir", str(runs)]
    args += ["--force", "--json", str(summary)]
    args += ["--config", str(config.resolve())] if config else []
    # exit codes 1 and 2 come back as the run's status in run.json, not as a failed child
    return f"from retain.cli import app; app({args!r}, standalone_mode=False)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--cutoff", default="2024-12-31")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args()
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    runs_root = args.runs_dir or Path(tempfile.mkdtemp(prefix="retain-monthly-"))
    whole, per_step, statuses, loads, split = [], {}, [], [], {}
    for repeat in range(args.repeats):
        runs, summary = runs_root / f"repeat-{repeat}", runs_root / f"repeat-{repeat}.json"
        before = os.getloadavg()[0]
        whole.append(run_measured(command(args.bank, args.cutoff, runs, summary, args.config)))
        loads.append((round(before, 1), round(os.getloadavg()[0], 1)))
        payload = json.loads(summary.read_text())
        statuses.append(payload["status"])
        for step in payload["steps"]:
            per_step.setdefault(step["name"], []).append(step)
        scored = runs / args.cutoff / "scores" / "summary.json"
        if scored.is_file():
            for name, seconds in json.loads(scored.read_text()).get("timings", {}).items():
                split.setdefault(name, []).append(seconds)
    rows, result = [], {"bank": str(args.bank), "cutoff": args.cutoff, "runs": args.repeats}
    result["config"] = str(args.config) if args.config else None
    for name, steps in per_step.items():
        seconds = statistics.median(s["seconds"] or 0 for s in steps)
        cpu = statistics.median(s.get("cpu_seconds") or 0 for s in steps)
        rss = statistics.median(s["peak_rss_mb"] or 0 for s in steps)
        rows.append([name, steps[-1]["status"], f"{seconds:.1f}", f"{cpu:.1f}", f"{rss:,.0f}"])
        result[name] = {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": rss}
        result[name]["status"] = steps[-1]["status"]
    overall = median_of(whole)
    seconds_target, mb_target = targets(args.bank)
    met = overall["seconds"] <= seconds_target and (
        mb_target is None or overall["peak_rss_mb"] <= mb_target
    )
    goal = f"≤ {seconds_target}s" + (f", ≤ {mb_target:,} MB" if mb_target else "")
    rows.append(
        [
            "whole command",
            f"{', '.join(statuses)}; {'meets' if met else 'MISSES'} {goal}",
            f"{overall['seconds']:.1f}",
            f"{overall['cpu_seconds']:.1f}",
            f"{overall['peak_rss_mb']:,.0f}",
        ]
    )
    result["score_split"] = {name: statistics.median(v) for name, v in split.items()}
    rows += [[f"  score: {n}", "", f"{s:.1f}", ""] for n, s in result["score_split"].items()]
    rows.append(
        ["load average (before → after)", "; ".join(f"{a} → {b}" for a, b in loads), "", ""]
    )
    result.update(command=overall, target_seconds=seconds_target, target_peak_rss_mb=mb_target)
    result.update(meets=met, statuses=statuses, load_average=loads)
    report(
        "monthly",
        ["step", "status", "seconds (median)", "CPU seconds (median)", "peak RSS MB (median)"],
        rows,
        result,
    )


if __name__ == "__main__":
    sys.exit(main())
