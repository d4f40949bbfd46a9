"""How often the uplift gate lets a model in when calls change nothing.

A bank of the other configuration (docs/other_bank.toml, string ids, its own catalogue) is
generated without a campaign, its features built and its churn model trained and promoted.
Its `list_assignments` are then drawn by a policy the generator never sees — every eligible
customer, `p_treat` 0.8 for all ("constant") or 0.35–0.85 rising with the fall of AUM
("varying") — so a call's effect on these draws is nil by construction. For each seed the
uplift model is trained (`training.uplift_run.train_uplift`, every learner) and the gate asked
(`beats_risk`: the paired gain over the risk ranking and the Qini, both intervals above 0),
beside what the gain's interval alone would have said. A gate at its nominal level passes
about 2.5% of such draws (one-sided); the draws share the bank's outcomes, so they are not
independent trials.

Usage: python benchmarks/gate_null.py [--seeds 7-16] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from common import report

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "docs" / "other_bank.toml"


def retain(*args: str) -> None:
    command = [sys.executable, "-m", "retain", *args]  # this tree's retain, whatever is installed
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"retain {args[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def build_bank(work: Path) -> tuple[Path, Path]:
    """The bank, its features and a churn champion in ``work`` (MLflow store included)."""
    warehouse, features = work / "warehouse", work / "features.parquet"
    config = ("--config", str(CONFIG))
    retain("synth", *config, "--customers", "3000", "--seed", "4", "--out", str(warehouse))
    cutoffs = ("--cutoffs", "2023-04-30:2024-12-31")
    retain("features", *config, "--warehouse", str(warehouse), *cutoffs, "--out", str(features))
    retain("train", *config, "--features", str(features), "--task", "churn")
    retain("promote", "--model", "churn")
    for leftover in warehouse.glob("truth*"):  # the uplift model may not read the generator's
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    (warehouse / "_meta.json").unlink(missing_ok=True)
    return warehouse, features


def draw_policy(features: pd.DataFrame, seed: int, kind: str) -> pd.DataFrame:
    eligible = features[features["cutoff"].astype(str) <= "2024-09-30"]
    fall = eligible.groupby("cutoff")["aum_vs_prev_3m"].rank(pct=True).fillna(0.5)
    if kind == "varying":
        p_treat = (0.35 + 0.5 * (1 - fall)).clip(0.35, 0.85).round(3).to_numpy()
    else:
        p_treat = np.full(len(eligible), 0.8)
    called = np.random.default_rng(seed).random(len(eligible)) < p_treat
    return pd.DataFrame(
        {
            "customer_id": eligible["customer_id"].astype("string"),
            "cutoff": pd.to_datetime(eligible["cutoff"]).dt.date,
            "list_id": "policy",
            "group": np.where(called, "treated", "control"),
            "p_treat": p_treat,
            "rank": 1,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="7-16")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    first, last = (int(x) for x in args.seeds.split("-"))
    work = args.work or Path(tempfile.mkdtemp(prefix="gate_null_"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlruns' / 'mlflow.db'}"
    (work / "mlruns").mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from models.registry import use_store
    from retain.config import load_config
    from training.uplift_run import beats_risk, train_uplift

    warehouse, features_path = build_bank(work)
    features = pd.read_parquet(features_path)
    bank = load_config(CONFIG)
    use_store(work)
    rows, results = [], []
    for seed in range(first, last + 1):
        for kind in ("constant", "varying"):
            policy = draw_policy(features, seed, kind)
            policy.to_parquet(warehouse / "list_assignments.parquet", index=False)
            summary = train_uplift(features_path, str(warehouse), bank)
            f = summary["figures"][summary["learner"]]
            passed = beats_risk(f)
            result = {
                "seed": seed,
                "policy": kind,
                "learner": summary["learner"],
                "observed_effect": summary["history"]["observed_effect"],
                "gain": f["policy_gain"],
                "gain_low": f["policy_gain_low"],
                "gain_high": f["policy_gain_high"],
                "qini_low": f["qini_low"],
                "gain_alone_passed": bool(f["policy_gain_low"] > 0),
                "passed": passed,
            }
            results.append(result)
            rows.append(
                [
                    seed,
                    kind,
                    summary["learner"],
                    f"{result['observed_effect']:+.4f}",
                    f"{f['policy_gain']:+,.0f} [{f['policy_gain_low']:+,.0f}, "
                    f"{f['policy_gain_high']:+,.0f}]",
                    f"{f['qini']:+.4f} [{f['qini_low']:+.4f}, {f['qini_high']:+.4f}]",
                    "passes" if result["gain_alone_passed"] else "-",
                    "PASSES" if passed else "keeps risk",
                ]
            )
    passed = sum(r["passed"] for r in results)
    alone = sum(r["gain_alone_passed"] for r in results)
    rows.append(
        ["all", "", "", "", "", "", f"{alone} of {len(results)}", f"{passed} of {len(results)}"]
    )
    payload = {"draws": results, "passed": passed, "gain_alone_passed": alone, "of": len(results)}
    columns = [
        "seed",
        "policy",
        "learner",
        "effect shown",
        "gain per call [95%]",
        "Qini [95%]",
        "gain alone",
        "gate (gain and Qini)",
    ]
    report("gate_null", columns, rows, payload)


if __name__ == "__main__":
    main()
