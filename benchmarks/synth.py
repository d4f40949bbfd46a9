"""Synthetic bank generation: wall time and peak RSS for 100k and 1M customers × 24 months.

Target (docs/design.md §9 / issue 2): 1M customers in ≤ 10 min and ≤ 8 GB peak on 2 cores.
Usage: python benchmarks/synth.py [--sizes 100000,1000000] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import median_of, report, run_measured

TARGET_SECONDS, TARGET_RSS_MB = 600, 8 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size below 1M")
    parser.add_argument("--out", type=Path, default=None, help="keep the last bank here")
    args = parser.parse_args()
    rows, payload = [], {"target": {"seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB}}
    for size in (int(s) for s in args.sizes.split(",")):
        workdir = Path(tempfile.mkdtemp(prefix="synth-bench-"))
        out = args.out or workdir / "bank"
        code = (
            "from synthetic.bank import write_bank; from synthetic.config import SynthConfig; "
            f"write_bank(SynthConfig(customers={size}, months=24, seed=0), {str(out)!r})"
        )
        repeats = 1 if size >= 1_000_000 else args.repeats
        result = median_of([run_measured(code) for _ in range(repeats)])
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        shutil.rmtree(workdir, ignore_errors=True)
        ok = result["seconds"] <= TARGET_SECONDS and result["peak_rss_mb"] <= TARGET_RSS_MB
        verdict = "yes" if ok else ("NO" if size >= 1_000_000 else "-")
        rows.append(
            [
                f"{size:,}",
                repeats,
                f"{result['seconds']:.1f}",
                f"{result['peak_rss_mb']:.0f}",
                f"{size_mb:.0f}",
                f"{size / result['seconds']:,.0f}",
                verdict,
            ]
        )
        payload[str(size)] = {**result, "runs": repeats, "warehouse_mb": size_mb}
    report(
        "synth",
        [
            "customers",
            "runs",
            "seconds (median)",
            "peak RSS MB",
            "parquet MB",
            "customers/s",
            "meets 1M target",
        ],
        rows,
        payload,
    )


if __name__ == "__main__":
    main()
