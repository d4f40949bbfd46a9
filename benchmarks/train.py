"""Training cost: LightGBM (the default churn model: fit with early stopping + calibration)
against the logistic-regression baseline, on 100k and 1M training rows, in one run.

Rows come from a feature file (by default the 1M-customer bank of benchmarks/features.py):
whole customers are sampled so every cutoff stays, and the split stays out of time.
Usage: python benchmarks/train.py [--features FILE] [--rows 100000,1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import ROOT, median_of, report, run_measured

DEFAULT_FEATURES = ROOT / "data" / "bench_banks" / "features_1000000_duckdb.parquet"

STEP = """
import numpy as np, pandas as pd
from features.targets import CHURN
from training.dataset import split_out_of_time
frame = pd.read_parquet({path!r})
frame = frame[frame[CHURN.label].notna()]
ids = frame["customer_id"].unique()
share = min(1.0, {rows} / (len(frame) * {train_share}))
keep = np.random.default_rng(0).choice(ids, int(len(ids) * share), replace=False)
ds = split_out_of_time(frame[frame["customer_id"].isin(keep)], CHURN.label, 3)
print("TRAIN_ROWS", len(ds.train.y))
{body}
"""
BODIES = {
    "lightgbm": (
        "from training.train import TrainConfig, fit_booster\n"
        "from training.calibrate import fit_calibrator\n"
        "b = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, TrainConfig())\n"
        "fit_calibrator(b.predict(ds.valid.x), ds.valid.y)"
    ),
    "logistic_regression": (
        "from training.baselines import logistic_regression\nlogistic_regression(ds.train, ds.test)"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=Path, default=DEFAULT_FEATURES)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.features.exists():
        raise SystemExit(f"{args.features} is missing: run benchmarks/features.py first")
    rows, payload = [], {}
    for n in (int(r) for r in args.rows.split(",")):
        base = None
        for model, body in BODIES.items():
            code = STEP.format(path=str(args.features), rows=n, train_share=0.75, body=body)
            repeats = 1 if n >= 1_000_000 else args.repeats
            result = median_of([run_measured(code) for _ in range(repeats)])
            base = base or result["seconds"]
            seconds, rss = result["seconds"], result["peak_rss_mb"]
            rows.append(
                [f"{n:,}", model, repeats, f"{seconds:.1f}", f"{rss:.0f}", f"{seconds / base:.2f}"]
            )
            payload[f"{n}/{model}"] = {**result, "runs": repeats}
    report(
        "train",
        [
            "training rows (approx.)",
            "model",
            "runs",
            "seconds (median)",
            "peak RSS MB",
            "× lightgbm",
        ],
        rows,
        payload,
    )


if __name__ == "__main__":
    main()
