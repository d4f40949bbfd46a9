"""How the churn defaults were chosen: a backtest with the docs/design.md §5 embargo over three
synthetic banks that differ (seeds, and a bank with another catalogue, tier ladder and string
ids), against deeper trees and LightGBM's own defaults; plus the before/after of the embargo.

For every bank: features for every month with 3 months of history; for each of the last three
labelled cutoffs, every candidate is trained on the embargoed cutoffs before it (validation ≤
test − 3, training ≤ validation − 3) and scored against the oracle AUC of the truth on the same
rows. The default's calibrated ECE is measured at the last cutoff. "Without embargo" trains the
default the old way (validation = test − 1, training ≤ test − 2) on the same test rows.
Usage: python benchmarks/churn_defaults.py [--customers 20000]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from common import ROOT, report
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(ROOT))  # the project's packages, not benchmarks/features.py

from features.build import parse_cutoffs
from features.materialize import write_features
from features.targets import CHURN
from retain.config import load_config
from synthetic.bank import write_bank
from synthetic.config import SynthConfig, synth_config_from_toml
from training.calibrate import fit_calibrator
from training.dataset import dataset_at, embargoed_cutoffs, labelled_cutoffs
from training.evaluate import ece
from training.train import TrainConfig, fit_booster

HORIZON = 3
CANDIDATES = {
    "default (depth 3, 7 leaves, rate 0.05, ≤ 600)": TrainConfig(),
    "depth 3, 7 leaves, rate 0.1, ≤ 300 (before)": TrainConfig(
        learning_rate=0.1, num_boost_round=300
    ),
    "depth 4, 15 leaves, rate 0.05": TrainConfig(max_depth=4, num_leaves=15),
    "depth 6, 31 leaves, rate 0.03, ≤ 1500": TrainConfig(
        max_depth=6, num_leaves=31, learning_rate=0.03, num_boost_round=1500
    ),
}
LIBRARY = "LightGBM library defaults + early stopping"


def banks(customers: int, folder: Path) -> dict[str, tuple[Path, object]]:
    other = tomllib.loads((ROOT / "docs" / "other_bank.toml").read_text())
    specs = {
        "seed 21": (SynthConfig(customers=customers, seed=21), load_config(None)),
        "seed 5": (SynthConfig(customers=customers, seed=5), load_config(None)),
        "other bank, seed 3": (
            synth_config_from_toml(other, overrides={"customers": customers, "seed": 3}),
            load_config(ROOT / "docs" / "other_bank.toml"),
        ),
    }
    out = {}
    for name, (synth, bank) in specs.items():
        where = folder / name.replace(" ", "_").replace(",", "")
        if not (where / "features.parquet").is_file():
            write_bank(synth, where / "warehouse", ladder=bank.tiers)
            last = pd.Timestamp(synth.end)
            first = (last - pd.offsets.MonthEnd(synth.months - 4)).date()
            cutoffs = parse_cutoffs(f"{first}:{last.date()}")
            write_features(where / "warehouse", cutoffs, where / "features.parquet", bank)
        out[name] = where / "features.parquet"
    return out


def library_defaults(ds) -> np.ndarray:
    params = {"objective": "binary", "metric": "auc", "verbosity": -1, "seed": 0}
    train = lgb.Dataset(ds.train.x, ds.train.y)
    valid = lgb.Dataset(ds.valid.x, ds.valid.y, reference=train)
    booster = lgb.train(
        params, train, 2000, valid_sets=[valid], callbacks=[lgb.early_stopping(100, verbose=False)]
    )
    return booster.predict(ds.test.x)


def evaluate_bank(path: Path) -> dict:
    frame = pd.read_parquet(path)
    cutoffs = labelled_cutoffs(frame, CHURN.label)
    result = {name: [] for name in [*CANDIDATES, LIBRARY]}
    for test in cutoffs[-3:]:
        train, valid = embargoed_cutoffs([c for c in cutoffs if c < test], test, HORIZON)
        ds = dataset_at(frame, CHURN.label, train, valid, test)
        oracle = roc_auc_score(ds.test.y, ds.test.rows[CHURN.truth(HORIZON)])
        for name, config in CANDIDATES.items():
            booster = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, config)
            result[name].append(roc_auc_score(ds.test.y, booster.predict(ds.test.x)) / oracle)
        result[LIBRARY].append(roc_auc_score(ds.test.y, library_defaults(ds)) / oracle)
    # at the last cutoff: calibration of the default, and the embargo's before/after
    booster = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, TrainConfig())
    calibrator, _ = fit_calibrator(booster.predict(ds.valid.x), ds.valid.y)
    p = calibrator.apply(booster.predict(ds.test.x))
    old = dataset_at(
        frame, CHURN.label, [c for c in cutoffs if c < cutoffs[-2]], cutoffs[-2], cutoffs[-1]
    )
    old_booster = fit_booster(old.train.x, old.train.y, old.valid.x, old.valid.y, TrainConfig())
    old_auc = roc_auc_score(old.test.y, old_booster.predict(old.test.x))
    return {
        "test_cutoffs": [str(c) for c in cutoffs[-3:]],
        "auc_to_oracle": result,
        "ece_default": ece(ds.test.y, p),
        "test_auc_default": roc_auc_score(ds.test.y, p),
        "test_auc_without_embargo": old_auc,
        "oracle_auc": oracle,
        "churners_at_test": int(ds.test.y.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    folder = ROOT / "data" / "bench_banks" / f"churn_defaults_{args.customers}"
    payload, rows = {"customers": args.customers, "banks": {}}, []
    for name, path in banks(args.customers, folder).items():
        measured = evaluate_bank(path)
        payload["banks"][name] = measured
        for candidate, ratios in measured["auc_to_oracle"].items():
            rows.append([name, candidate, *(f"{r:.4f}" for r in ratios), f"{np.mean(ratios):.4f}"])
        rows.append(
            [name, "ECE of the default (last cutoff)", "", "", "", f"{measured['ece_default']:.4f}"]
        )
        rows.append(
            [
                name,
                "test AUC: with / without embargo",
                "",
                "",
                "",
                f"{measured['test_auc_default']:.4f} / {measured['test_auc_without_embargo']:.4f}",
            ]
        )
    report(
        "churn_defaults", ["bank", "candidate", "test 1", "test 2", "test 3", "mean"], rows, payload
    )


if __name__ == "__main__":
    main()
