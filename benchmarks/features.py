"""Feature building: this build on DuckDB, on Spark (local[2]), and the previous release of
the build, on the same bank, in one run.

For each bank size (customers × 24 months, 12 monthly cutoffs) every engine runs in a child
process: wall time and peak RSS of the process tree (median of the repeats), feature rows, and
the ratio to the previous release. The previous release is the feature code of an earlier
commit (default 10fdc7d), checked out as a ``git worktree`` and run with this interpreter —
its own ``features`` package first on the path. Targets (docs/design.md §9): 1M customers on
DuckDB in ≤ 3 min and ≤ 4 GB peak; Spark local[2] completes within 8 GB.

(The plain-pandas baseline that used to stand here computed 5 of the ~90 features, so its
speed said nothing about this build; it is gone.)

Usage: python benchmarks/features.py [--sizes 100000,1000000] [--repeats 3] [--repeats-large 1]
       [--engines duckdb,spark,previous] [--timeout 1800] [--banks DIR]
       [--previous-commit 10fdc7d] [--previous-tree DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq
from common import ensure_bank, median_of, previous_tree, report, run_measured

CUTOFFS = ("2024-01-31", "2024-12-31")
LARGE = 1_000_000
TARGETS = {  # (seconds, peak RSS MB) at 1M customers; None: not a target
    "duckdb": (180, 4 * 1024),
    "spark": (None, 8 * 1024),
}
HERE = Path(__file__).resolve().parent


def command(engine: str, bank: Path, out: Path, previous: Path | None) -> str:
    if engine == "previous":  # the earlier commit's own feature code, first on the path
        return (
            f"import sys; sys.path.insert(0, {str(previous)!r}); "
            "import features.materialize as m; from features.build import parse_cutoffs; "
            "from features.config import BankConfig; "
            f"assert m.__file__.startswith({str(previous)!r}), m.__file__; "
            f"m.write_features({str(bank)!r}, parse_cutoffs('{CUTOFFS[0]}:{CUTOFFS[1]}'), "
            f"__import__('pathlib').Path({str(out)!r}), BankConfig())"
        )
    return (
        "from retain.cli import app; "
        f"app(['features', '--warehouse', {str(bank)!r}, '--cutoffs', '{CUTOFFS[0]}:{CUTOFFS[1]}',"
        f" '--engine', {engine!r}, '--out', {str(out)!r}], standalone_mode=False)"
    )


def verdict(engine: str, size: int, result: dict) -> str:
    if size < LARGE or engine not in TARGETS:
        return ""
    seconds, rss = TARGETS[engine]
    ok = (seconds is None or result["seconds"] <= seconds) and result["peak_rss_mb"] <= rss
    return "meets target" if ok else "MISSES target"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--engines", default="duckdb,spark,previous")
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine below 1M")
    parser.add_argument("--repeats-large", type=int, default=1, help="runs per engine at 1M+")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--banks", type=Path, default=HERE.parent / "data" / "bench_banks")
    parser.add_argument("--previous-commit", default="10fdc7d")
    parser.add_argument("--previous-tree", type=Path, default=None)
    args = parser.parse_args()
    engines = args.engines.split(",")
    previous = None
    if "previous" in engines:
        tree = args.previous_tree or args.banks / f"previous-{args.previous_commit}"
        previous = previous_tree(tree, args.previous_commit)
    rows, payload = (
        [],
        {
            "targets_1m": {e: {"seconds": s, "peak_rss_mb": r} for e, (s, r) in TARGETS.items()},
            "previous_commit": args.previous_commit,
            "cutoffs": list(CUTOFFS),
        },
    )
    for size in (int(s) for s in args.sizes.split(",")):
        bank = ensure_bank(args.banks, size)
        results = {}
        for engine in engines:
            out = args.banks / f"features_{size}_{engine}.parquet"
            repeats = args.repeats_large if size >= LARGE else args.repeats
            try:
                runs = [
                    run_measured(command(engine, bank, out, previous), timeout=args.timeout)
                    for _ in range(repeats)
                ]
            except (RuntimeError, TimeoutError) as exc:
                rows.append([f"{size:,}", engine, repeats, "-", "-", "-", "-", str(exc)])
                payload[f"{size}/{engine}"] = {"error": str(exc)}
                continue
            result = median_of(runs)
            result["rows"] = pq.read_metadata(out).num_rows
            result["runs"] = repeats
            results[engine] = result
            payload[f"{size}/{engine}"] = result
        base = results.get("previous")
        for engine, result in results.items():
            ratio = f"{base['seconds'] / result['seconds']:.2f}×" if base else "-"
            rows.append(
                [
                    f"{size:,}",
                    engine,
                    result["runs"],
                    f"{result['seconds']:.1f}",
                    f"{result['peak_rss_mb']:,.0f}",
                    f"{result['rows']:,}",
                    ratio,
                    verdict(engine, size, result),
                ]
            )
    report(
        "features",
        [
            "customers",
            "engine",
            "runs",
            "seconds (median)",
            "peak RSS MB",
            "rows",
            "speed-up vs previous",
            "note",
        ],
        rows,
        payload,
    )


if __name__ == "__main__":
    sys.exit(main())
