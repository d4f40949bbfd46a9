"""Feature building: DuckDB vs Spark (local[2]) vs a plain-pandas baseline, in one run.

For each bank size (customers × 24 months, 12 monthly cutoffs) every step runs in a child
process: wall time, peak RSS of the process tree, and feature rows per second. The pandas
baseline computes only five core features, so its rows/s flatter it. Target (DESIGN §9):
1M customers on DuckDB in ≤ 10 min and ≤ 6 GB peak.

Usage: python benchmarks/features.py [--sizes 100000,1000000] [--repeats 3]
       [--engines duckdb,spark,pandas] [--timeout 1800] [--banks DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq
from common import median_of, report, run_measured

CUTOFFS = ("2024-01-31", "2024-12-31")
TARGET_SECONDS, TARGET_RSS_MB = 600, 6 * 1024
HERE = Path(__file__).resolve().parent


def command(engine: str, bank: Path, out: Path) -> str:
    if engine == "pandas":
        args = [str(bank), *CUTOFFS, str(out)]
        return (
            f"import sys; sys.path.append({str(HERE)!r}); import pandas_baseline; "
            f"pandas_baseline.main(*{args!r})"
        )
    return (
        "from retain.cli import app; "
        f"app(['features', '--warehouse', {str(bank)!r}, '--cutoffs', '{CUTOFFS[0]}:{CUTOFFS[1]}',"
        f" '--engine', {engine!r}, '--out', {str(out)!r}], standalone_mode=False)"
    )


def ensure_bank(banks: Path, size: int) -> Path:
    bank = banks / f"bank_{size}"
    if not (bank / "_meta.json").exists():
        config = f"SynthConfig(customers={size}, months=24, seed=0)"
        code = (
            "from synthetic.bank import write_bank; from synthetic.config import SynthConfig; "
            f"write_bank({config}, {str(bank)!r})"
        )
        run_measured(code)
    return bank


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--engines", default="duckdb,spark,pandas")
    parser.add_argument("--repeats", type=int, default=3, help="runs per step below 1M")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--banks", type=Path, default=HERE.parent / "data" / "bench_banks")
    args = parser.parse_args()
    rows, payload = [], {"target": {"seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB}}
    for size in (int(s) for s in args.sizes.split(",")):
        bank = ensure_bank(args.banks, size)
        baseline = None
        for engine in args.engines.split(","):
            out = args.banks / f"features_{size}_{engine}.parquet"
            repeats = 1 if size >= 1_000_000 else args.repeats
            try:
                runs = [
                    run_measured(command(engine, bank, out), timeout=args.timeout)
                    for _ in range(repeats)
                ]
            except (RuntimeError, TimeoutError) as exc:
                rows.append([f"{size:,}", engine, repeats, "-", "-", "-", "-", str(exc)])
                payload[f"{size}/{engine}"] = {"error": str(exc)}
                continue
            result = median_of(runs)
            n_rows = pq.read_metadata(out).num_rows
            result["rows"] = n_rows
            result["rows_per_second"] = n_rows / result["seconds"]
            baseline = baseline or (result["seconds"] if engine == "pandas" else None)
            note = ""
            if engine == "duckdb" and size >= 1_000_000:
                ok = result["seconds"] <= TARGET_SECONDS and result["peak_rss_mb"] <= TARGET_RSS_MB
                note = "meets target" if ok else "MISSES target"
            rows.append(
                [
                    f"{size:,}",
                    engine,
                    repeats,
                    f"{result['seconds']:.1f}",
                    f"{result['peak_rss_mb']:.0f}",
                    f"{n_rows:,}",
                    f"{result['rows_per_second']:,.0f}",
                    note,
                ]
            )
            payload[f"{size}/{engine}"] = {**result, "runs": repeats}
    report(
        "features",
        [
            "customers",
            "engine",
            "runs",
            "seconds (median)",
            "peak RSS MB",
            "rows",
            "rows/s",
            "note",
        ],
        rows,
        payload,
    )


if __name__ == "__main__":
    sys.exit(main())
