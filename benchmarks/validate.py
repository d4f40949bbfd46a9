"""`retain validate` on large synthetic banks: this build and the previous release, on the same
bank, in one run.

Each run is `retain validate --warehouse BANK --json …` in a child process: wall time and peak
RSS of the process tree (median of the repeats), and the number of violations (a generated
bank has none; a run that finds any is reported, not timed as a success). The previous release
is the validation of an earlier commit (default 21d6702, the last before validation moved into
the engine), checked out as a ``git worktree`` and run with this interpreter — its own packages
first on the path. Target (issue 18): 1M customers in ≤ 30 s and ≤ 2 GB peak.

Usage: python benchmarks/validate.py [--sizes 100000,1000000] [--repeats 3]
       [--engines duckdb,previous] [--banks DIR] [--previous-commit 21d6702]
       [--previous-tree DIR] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import ensure_bank, median_of, previous_tree, report, run_measured

LARGE = 1_000_000
TARGET = (30.0, 2 * 1024)  # seconds, peak RSS MB at 1M customers
HERE = Path(__file__).resolve().parent


def command(bank: Path, summary: Path, previous: Path | None) -> str:
    args = ["validate", "--warehouse", str(bank), "--json", str(summary)]
    first = ""
    if previous is not None:  # the earlier commit's own packages, first on the path
        first = (
            # from its own folder too: ./retain.toml is read, and this one's has newer keys
            f"import os, sys; os.chdir({str(previous)!r}); sys.path.insert(0, {str(previous)!r}); "
            "import features.schema as s; "
            f"assert s.__file__.startswith({str(previous)!r}), s.__file__; "
        )
    # validate exits 1 on violations: standalone_mode=False returns the code, sys.exit keeps it
    run = f"sys.exit(app({args!r}, standalone_mode=False))"
    return f"{first}import sys; from retain.cli import app; {run}"


def measure(bank: Path, repeats: int, previous: Path | None, timeout: float) -> dict:
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        summary = Path(folder) / "validate.json"
        for _ in range(repeats):
            runs.append(run_measured(command(bank, summary, previous), timeout=timeout))
        found = json.loads(summary.read_text())
    result = median_of(runs)
    result["runs"] = repeats
    result["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    result["violations"] = len(found.get("violations", []))
    return result


def verdict(size: int, engine: str, result: dict) -> str:
    if size < LARGE or engine == "previous":
        return ""
    seconds, rss = TARGET
    ok = result["seconds"] <= seconds and result["peak_rss_mb"] <= rss
    return "meets target" if ok else "MISSES target"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--engines", default="duckdb,previous")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--banks", type=Path, default=HERE.parent / "data" / "bench_banks")
    parser.add_argument("--previous-commit", default="21d6702")
    parser.add_argument("--previous-tree", type=Path, default=None)
    args = parser.parse_args()
    engines = args.engines.split(",")
    previous = None
    if "previous" in engines:
        tree = args.previous_tree or args.banks / f"previous-{args.previous_commit}"
        previous = previous_tree(tree, args.previous_commit)
    rows: list[list] = []
    payload: dict = {
        "target_1m": {"seconds": TARGET[0], "peak_rss_mb": TARGET[1]},
        "previous_commit": args.previous_commit,
    }
    for size in (int(s) for s in args.sizes.split(",")):
        bank = ensure_bank(args.banks, size)
        results = {}
        for engine in engines:
            try:
                tree = previous if engine == "previous" else None
                results[engine] = measure(bank, args.repeats, tree, args.timeout)
            except (RuntimeError, TimeoutError) as exc:
                rows.append([f"{size:,}", engine, args.repeats, *["-"] * 5, str(exc)])
                payload[f"{size}/{engine}"] = {"error": str(exc)}
                continue
            payload[f"{size}/{engine}"] = results[engine]
        base = results.get("previous")
        for engine, result in results.items():
            ratio = f"{base['seconds'] / result['seconds']:.2f}×" if base else "-"
            rows.append(
                [
                    f"{size:,}",
                    engine,
                    result["runs"],
                    f"{result['seconds']:.1f}",
                    f"{result['cpu_seconds']:.1f}",
                    f"{result['peak_rss_mb']:,.0f}",
                    result["violations"],
                    ratio,
                    verdict(size, engine, result),
                ]
            )
    columns = ["customers", "build", "runs", "seconds (median)", "CPU s", "peak RSS MB"]
    columns.append("violations")
    report("validate", [*columns, "speed-up vs previous", "note"], rows, payload)


if __name__ == "__main__":
    sys.exit(main())
