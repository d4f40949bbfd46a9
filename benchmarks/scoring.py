"""Scoring and reasons throughput on the largest bank we build (1M customers), in one run.

Models are the defaults (training.train.TrainConfig), fitted here out of time on a sample of
20k customers of the same feature file, with calibration: churn, one per cross-sell product
that has enough buyers, and upgrade — exactly what `retain score` loads. Then, on the rows of
the last cutoff (one per customer):

- scoring: calibrated probabilities of every model, customers/s; the models' probabilities
  alone by LightGBM's own walk and by the leaf tables (models.compiled_trees), in seconds, and
  whether they are the same bits;
- reasons: top-3 grouped churn reasons (serving.explain: TreeSHAP from the trees' tables,
  models.tree_shap), customers/s, with and without rendering the texts;
- the same contributions on a sample by the tables, by LightGBM's own TreeSHAP
  (``pred_contrib``, what reasons used before) and by shap.TreeExplainer: customers/s, the
  largest difference and the share of rows with the same top-3.

Usage: python benchmarks/scoring.py [--features FILE] [--repeats 3] [--shap-rows 5000]
                                    [--reason-rows 200000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # loads the submodule behind pa.compute
import pyarrow.parquet as pq
from common import ROOT, report

# the project's packages, not benchmarks/features.py next to this file
sys.path.insert(0, str(ROOT))

DEFAULT_FEATURES = ROOT / "data" / "bench_banks" / "features_1000000_duckdb.parquet"
TRAIN_CUSTOMERS = 20_000


def timed(step, repeats: int) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = step()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def train_models(path: Path) -> dict:
    from features.targets import label_columns
    from training.calibrate import fit_calibrator
    from training.dataset import DatasetError, split_out_of_time
    from training.train import TrainConfig, fit_booster

    ids = pq.read_table(path, columns=["customer_id"]).column(0).to_numpy()
    keep = np.random.default_rng(0).choice(np.unique(ids), TRAIN_CUSTOMERS, replace=False)
    frame = pd.read_parquet(path, filters=[("customer_id", "in", keep.tolist())])
    models = {}
    for target in label_columns(frame.columns):
        try:
            ds = split_out_of_time(frame, target.label, 3)
        except DatasetError:
            continue
        booster = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, TrainConfig())
        calibrator, _ = fit_calibrator(booster.predict(ds.valid.x), ds.valid.y)
        models[target] = {
            "booster": booster,
            "calibration": calibrator.to_json(),
            "features": list(ds.inputs),
        }
    return models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=Path, default=DEFAULT_FEATURES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shap-rows", type=int, default=5_000)
    parser.add_argument("--reason-rows", type=int, default=200_000)
    args = parser.parse_args()
    if not args.features.exists():
        raise SystemExit(f"{args.features} is missing: run benchmarks/features.py first")
    import shap

    from features.targets import CHURN, UPGRADE
    from models import compiled_trees
    from models.artifact import VerifiedModel
    from models.compiled_trees import COMPILED_ROWS
    from serving.champions import ModelSet
    from serving.explain import ReasonGroups, contributions, explain, inputs, top_reasons
    from serving.score import score_frame

    started = time.perf_counter()
    models = train_models(args.features)
    train_seconds = time.perf_counter() - started
    churn = models[CHURN]
    cutoffs = pq.read_table(args.features, columns=["cutoff"]).column(0)
    last = pa.compute.max(cutoffs)
    rows = pq.read_table(args.features, filters=pa.compute.field("cutoff") == last).to_pandas()
    last = last.as_py()
    n = len(rows)
    trees = churn["booster"].num_trees()
    print(
        f"{len(models)} models trained in {train_seconds:.0f}s; churn: {trees} trees; "
        f"{n:,} customers at {last}"
    )

    # the path `retain score` and the API take: one input matrix, every model
    verified = {
        target: VerifiedModel(target.model, "bench", m["booster"], m)
        for target, m in models.items()
    }
    model_set = ModelSet(
        churn=verified[CHURN],
        upgrade=verified[UPGRADE],
        cross_sell={t.product: v for t, v in verified.items() if t.product is not None},
    )

    def score_all():
        return score_frame(model_set, rows)

    score_s, _ = timed(score_all, args.repeats)
    # the models' probabilities alone: LightGBM's walk against the leaf tables, compiled
    matrices = [(m["booster"], inputs(rows, m["features"])) for m in models.values()]
    compiled_trees.predict(churn["booster"], matrices[0][1][:COMPILED_ROWS])  # compiled once
    walk_s, walked = timed(lambda: [b.predict(x) for b, x in matrices], args.repeats)
    tables_s, tabled = timed(
        lambda: [compiled_trees.predict(b, x) for b, x in matrices], args.repeats
    )
    same_bits = sum(np.array_equal(a, b) for a, b in zip(walked, tabled, strict=True))
    explained = rows.sample(min(n, args.reason_rows), random_state=1)
    r = len(explained)
    reason_s, reasons = timed(
        lambda: explain(churn["booster"], explained, churn["features"]), args.repeats
    )
    text_s, _ = timed(lambda: [reasons.texts(k, "zh") for k in range(3)], 1)
    sample = rows.sample(min(args.shap_rows, n), random_state=0)
    contrib_s, ours = timed(
        lambda: contributions(churn["booster"], sample, churn["features"]), args.repeats
    )
    explainer = shap.TreeExplainer(churn["booster"])
    x = sample[churn["features"]].astype("float64")
    shap_s, theirs = timed(lambda: explainer.shap_values(x), args.repeats)
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    values = x.to_numpy()
    lightgbm_s, lightgbms = timed(
        lambda: churn["booster"].predict(values, pred_contrib=True)[:, :-1], args.repeats
    )
    groups = ReasonGroups.for_features(churn["features"])
    top = top_reasons(ours, values, groups).feature
    same = top == top_reasons(theirs, values, groups).feature
    same_lightgbm = top == top_reasons(lightgbms, values, groups).feature
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    m = len(sample)
    figures = {
        "customers": n,
        "models": len(models),
        "churn_trees": trees,
        "scoring_customers_per_s": n / score_s,
        "probabilities_lightgbm_s": walk_s,
        "probabilities_tables_s": tables_s,
        "tables_over_lightgbm": walk_s / tables_s,
        "models_with_the_same_bits": same_bits,
        "reasons_customers_per_s": r / reason_s,
        "reasons_with_zh_text_customers_per_s": r / (reason_s + text_s),
        "contributions_customers_per_s": m / contrib_s,
        "pred_contrib_customers_per_s": m / lightgbm_s,
        "tree_explainer_customers_per_s": m / shap_s,
        "contributions_over_pred_contrib": lightgbm_s / contrib_s,
        "contributions_over_tree_explainer": shap_s / contrib_s,
        "max_abs_difference": float(np.abs(ours - theirs).max()),
        "max_abs_difference_pred_contrib": float(np.abs(ours - lightgbms).max()),
        "same_top3_share": float(same.all(axis=1).mean()),
        "same_top3_share_pred_contrib": float(same_lightgbm.all(axis=1).mean()),
        "peak_rss_gb": peak_gb,
        "repeats": args.repeats,
    }
    table = [
        ["scoring, all models", f"{n:,}", f"{n / score_s:,.0f}", "≥ 20,000"],
        ["… probabilities, LightGBM's walk", f"{n:,}", f"{n / walk_s:,.0f}", ""],
        ["… probabilities, leaf tables (compiled)", f"{n:,}", f"{n / tables_s:,.0f}", ""],
        ["top-3 reasons", f"{r:,}", f"{r / reason_s:,.0f}", "≥ 5,000"],
        ["… plus zh texts", f"{r:,}", f"{r / (reason_s + text_s):,.0f}", ""],
        ["contributions, tables (serving.explain)", f"{m:,}", f"{m / contrib_s:,.0f}", ""],
        ["contributions, LightGBM pred_contrib", f"{m:,}", f"{m / lightgbm_s:,.0f}", ""],
        ["contributions, shap.TreeExplainer", f"{m:,}", f"{m / shap_s:,.0f}", ""],
    ]
    print(
        f"probabilities of {len(models)} models: leaf tables {walk_s / tables_s:.1f}× LightGBM's "
        f"walk ({tables_s:.2f} s against {walk_s:.2f} s), the same bits for {same_bits} of "
        f"{len(models)} models"
    )
    print(
        f"{len(models)} models, churn {trees} trees; the tables are "
        f"{lightgbm_s / contrib_s:.1f}× pred_contrib (max |Δ| "
        f"{figures['max_abs_difference_pred_contrib']:.1e}, same top-3 "
        f"{figures['same_top3_share_pred_contrib']:.1%}) and {shap_s / contrib_s:.1f}× "
        f"shap.TreeExplainer (max |Δ| {figures['max_abs_difference']:.1e}, same top-3 "
        f"{figures['same_top3_share']:.1%}); peak RSS {peak_gb:.1f} GB"
    )
    report("scoring", ["step", "customers", "customers/s (median)", "target"], table, figures)


if __name__ == "__main__":
    main()
