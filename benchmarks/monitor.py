"""`retain monitor` at a bank's scale (docs/design.md §9: 1M customers × every feature and
score ≤ 2 min).

The 1M-customer inputs are built by resampling two real scored cutoffs (``retain score``
outputs: features.parquet + scores.parquet) with replacement, seeded, under new customer ids —
real feature and score distributions at 1M rows each, without featurising and scoring a
1M-customer bank first (the monthly benchmark does that). Resampling repeats rows, so
quantile edges see ties; every feature and score column is kept, and the segments are the
configuration's (tier, branch). Repeated customers are not new evidence, so the alerts such
inputs raise mean nothing: only time and memory are measured.

Each run is ``monitoring.job.run_monitor`` in a child process (drift overall and by segment,
the CBPE estimate with its interval, the HTML report, monitor.json, and an MLflow run in a
scratch store), timed with its peak RSS; the table shows the median of ``--repeats`` runs.
Run it under ``flock /work/bench/heavy.lock``.

    cd benchmarks && python monitor.py --reference R/scores --current C/scores --work /scratch/dir
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from common import ROOT, median_of, report, run_measured

sys.path.insert(0, str(ROOT))  # the project's packages, not benchmarks/features.py

from features.targets import ELIGIBLE_CHURN, MODEL_VERSION_PREFIX, from_score

SCORE_KEEP = (
    "customer_id",
    "list_group",
    ELIGIBLE_CHURN,
    "contribution_12m",
    "tier",
    "branch_id",
)


def resample(source: Path, target: Path, customers: int, seed: int) -> dict:
    """``customers`` rows drawn with replacement from the scores directory ``source``, both
    files aligned, customer ids 1..customers; the feature file keeps its catalogue metadata."""
    target.mkdir(parents=True, exist_ok=True)
    features = pq.read_table(source / "features.parquet")
    scores = pd.read_parquet(source / "scores.parquet")
    keep = [
        c
        for c in scores.columns
        if c in SCORE_KEEP or from_score(c) is not None or c.startswith(MODEL_VERSION_PREFIX)
    ]
    scores = scores[keep].set_index("customer_id")
    rows = np.random.default_rng(seed).integers(0, features.num_rows, customers)
    ids = features.column("customer_id").to_numpy(zero_copy_only=False)[rows]
    new_ids = np.arange(1, customers + 1, dtype=np.int64)
    drawn = features.take(pa.array(rows))
    drawn = drawn.set_column(
        drawn.schema.get_field_index("customer_id"), "customer_id", pa.array(new_ids)
    )
    pq.write_table(drawn, target / "features.parquet")
    picked = scores.loc[ids].reset_index(drop=True)
    picked.insert(0, "customer_id", new_ids)
    picked.to_parquet(target / "scores.parquet", index=False)
    return {"rows": customers, "features": drawn.num_columns, "scores": len(keep) - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="a scores directory")
    parser.add_argument("--current", type=Path, required=True, help="a scores directory")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (large)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = args.work.resolve()
    sides = {}
    for name, source, seed in (("reference", args.reference, 1), ("current", args.current, 2)):
        folder = work / name / "scores"
        if (
            not (folder / "scores.parquet").is_file()
            or pq.read_metadata(folder / "scores.parquet").num_rows != args.customers
        ):
            sides[name] = resample(source.resolve(), folder, args.customers, seed)
        sides[name] = str(folder)
    store = work / "mlruns"
    store.mkdir(exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    code = (
        "from pathlib import Path\n"
        "from retain.config import load_config\n"
        "from monitoring.job import run_monitor\n"
        f"s = run_monitor(current=Path({sides['current']!r}), reference={sides['reference']!r}, "
        f"runs_dir=Path({str(work / 'runs')!r}), warehouse=None, config=load_config(None), "
        f"out=Path({str(work / 'out')!r}))\n"
        "print(s['alert'], len(s['alerts']), 'alerts')\n"
    )
    runs = [run_measured(code) for _ in range(args.repeats)]
    result = median_of(runs)
    written = json.loads((work / "out" / "monitor.json").read_text())
    columns = len({r["what"] for r in written["drift"]})
    segments = len({r["segment"] for r in written["drift"]}) - 1
    rows = [
        [
            f"{args.customers:,}",
            written["features"],
            len(written["scores"]),
            segments,
            f"{result['seconds']:.1f}",
            f"{result['peak_rss_mb']:,.0f}",
            " ".join(f"{r['seconds']:.1f}" for r in runs),
        ]
    ]
    report(
        "monitor",
        ["customers", "features", "scores", "segments", "seconds (median)", "peak RSS MB", "runs"],
        rows,
        {
            "customers": args.customers,
            "columns": columns,
            "features": written["features"],
            "scores": written["scores"],
            "segments": segments,
            "runs": runs,
            "median": result,
            "inputs": f"resampled with replacement from {args.reference} and {args.current}",
            "target_seconds": 120,
        },
    )


if __name__ == "__main__":
    main()
