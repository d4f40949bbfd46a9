"""The monthly run on a real Spark cluster: a standalone master and two 1-core, 1 GB workers on
loopback (the pinned pyspark's ``spark-class``). `retain run --engine spark --spark-master
spark://…` gives DuckDB's features, scores, reasons and lists; an executor no worker can hold
fails within a minute naming the memory asked and offered."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthetic.bank import write_bank
from synthetic.config import SynthConfig
from tests.conftest import run_retain
from tests.deploy.spark_cluster import LOOPBACK, start_cluster

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17"),
]

CUTOFF = "2024-12-31"  # the bank's last month: the monthly run's usual cutoff

# a monthly run on the cluster and one on DuckDB (~90 s): run by `make bench`; the fit checks
# below, which need only the cluster, stay in `make test` (equality is also checked in local mode
# by tests/features/test_spark_parity.py and tests/serving/test_spark_score.py)
SLOW_EQUALITY = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = start_cluster(tmp_path_factory.mktemp("spark_cluster"), workers=2, memory="1g")
    yield cluster
    cluster.stop()


def spark_env(env: dict) -> dict:
    """The driver on loopback, its executors' Python workers on this venv's interpreter."""
    return {**env, "SPARK_LOCAL_IP": LOOPBACK, "PYSPARK_PYTHON": sys.executable}


def write_config(path: Path, ui: str, **warehouse) -> Path:
    lines = ["[warehouse]", f'spark_master_ui = "{ui}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in warehouse.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def monthly_run(bank: Path, runs: Path, env: dict, *options: str):
    args = ["run", "--cutoff", CUTOFF, "--warehouse", str(bank), "--runs-dir", str(runs)]
    started = time.monotonic()
    result = run_retain([*args, "--lang", "en", *options], env, timeout=900)
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def both(champions, cluster, tmp_path_factory):
    """A 2k bank from the champions' generator run monthly on DuckDB (while the cluster
    starts), then on the cluster with 1 GB executors."""
    _, _, env = champions
    root = tmp_path_factory.mktemp("cluster_run")
    write_bank(SynthConfig(customers=2_000, seed=5), root / "bank")
    duck, duck_seconds = monthly_run(root / "bank", root / "duckdb", env)
    assert duck.returncode in (0, 2), duck.stderr[-3000:]
    cluster.wait_ready(workers=2)
    config = write_config(root / "cluster.toml", cluster.ui)
    options = ["--engine", "spark", "--spark-master", cluster.master, "--spark-memory", "1g"]
    spark, spark_seconds = monthly_run(
        root / "bank", root / "spark", spark_env(env), *options, "--config", str(config)
    )
    assert spark.returncode == duck.returncode, spark.stderr[-3000:] + cluster.logs()
    print(f"monthly run, 2k bank: DuckDB {duck_seconds:.1f} s, cluster {spark_seconds:.1f} s")
    return root / "duckdb" / CUTOFF, root / "spark" / CUTOFF


def read(folder: Path, name: str, keys: list[str]) -> pd.DataFrame:
    return pd.read_parquet(folder / name).sort_values(keys, ignore_index=True)


@SLOW_EQUALITY
def test_run_json_records_the_cluster_for_every_step_it_ran(both, cluster):
    duck, spark = (json.loads((f / "run.json").read_text()) for f in both)
    assert [s["status"] for s in spark["steps"]] == ["done"] * 4, spark["steps"]
    assert (spark["engine"], spark["spark_master"]) == ("spark", cluster.master)
    assert spark["spark_executors"] == {"memory": "1g", "cores": None}
    where = {s["name"]: s["runs_on"] for s in spark["steps"]}
    for name in ("validate", "features", "score"):
        assert (where[name]["engine"], where[name]["spark_master"]) == ("spark", cluster.master)
    assert {s["runs_on"]["engine"] for s in duck["steps"]} == {"duckdb", "local"}
    assert duck["spark_master"] is None
    apps = _finished_apps(cluster, "retain")
    assert apps and apps[-1]["memoryperexecutor"] == 1024  # the run's session was the cluster's


def _finished_apps(cluster, name: str, wait: float = 60) -> list[dict]:
    """The master's finished applications called ``name``: it lists an application as
    finished only after noticing that its driver has gone, which can take a few seconds after
    the run's process has exited (seen: still active when asked at once)."""
    deadline = time.monotonic() + wait
    while True:
        apps = [a for a in cluster.status()["completedapps"] if a["name"] == name]
        if apps or time.monotonic() > deadline:
            return apps
        time.sleep(1)


@SLOW_EQUALITY
def test_cluster_features_equal_duckdb_features(both):
    duck, spark = (read(f, "features.parquet", ["customer_id"]) for f in both)
    assert len(duck) > 1_000
    assert list(duck.columns) == list(spark.columns)
    assert duck["customer_id"].equals(spark["customer_id"])
    differ = []
    for column in duck.columns:
        a, b = duck[column], spark[column]
        if not a.isna().equals(b.isna()):
            differ.append(column)
        elif pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            known = a.notna().to_numpy()
            x, y = a.to_numpy(float)[known], b.to_numpy(float)[known]
            if not np.allclose(x, y, rtol=1e-12, atol=1e-9):  # sums in another order
                differ.append(column)
        elif not a[a.notna()].astype(str).equals(b[b.notna()].astype(str)):
            differ.append(column)
    assert differ == [], differ


@SLOW_EQUALITY
def test_cluster_scores_and_reasons_equal_duckdb(both):
    duck, spark = (read(f / "scores", "scores.parquet", ["customer_id"]) for f in both)
    assert duck["customer_id"].equals(spark["customer_id"])
    assert list(duck.columns) == list(spark.columns)
    probabilities = [c for c in duck.columns if c.startswith(("p_", "propensity_"))]
    assert {"p_churn", "p_upgrade"} <= set(probabilities)
    for column in probabilities:
        np.testing.assert_allclose(spark[column], duck[column], rtol=0, atol=1e-9)
    numbers = [c for c in duck.columns if c.endswith(("_contribution", "_value"))]
    texts = [c for c in duck.columns if "reason_" in c and c not in numbers]
    assert duck["reason_1_feature"].notna().sum() > 100  # explained customers, not none
    for column in [*texts, "risk_band", "growth_offer", "list_group", "list_id", "list_rank"]:
        a, b = duck[column], spark[column]
        assert a.isna().equals(b.isna()), column
        assert a[a.notna()].astype(str).equals(b[b.notna()].astype(str)), column
    for column in numbers:
        np.testing.assert_allclose(spark[column], duck[column], rtol=1e-12, atol=1e-9)


@SLOW_EQUALITY
def test_cluster_lists_equal_duckdb_lists(both):
    for name in ("lists.parquet", "growth.parquet"):
        keys = ["list_id", "rank", "customer_id"]
        a, b = (read(f / "scores", name, keys) for f in both)
        assert len(a) > 0, name
        assert a[keys].equals(b[keys]), name
    files = [sorted(p.name for p in (f / "scores" / "lists").iterdir()) for f in both]
    assert files[0] == files[1] and len(files[0]) > 0


def test_an_executor_no_worker_can_hold_fails_within_a_minute_naming_memory(
    champions, cluster, tmp_path
):
    _, _, env = champions
    write_bank(SynthConfig(customers=300, seed=5), tmp_path / "bank")
    cluster.wait_ready(workers=2)
    config = write_config(tmp_path / "cluster.toml", cluster.ui)
    options = ["--engine", "spark", "--spark-master", cluster.master, "--spark-memory", "16g"]
    result, seconds = monthly_run(
        tmp_path / "bank", tmp_path / "runs", spark_env(env), *options, "--config", str(config)
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert seconds < 60, seconds
    message = " ".join(result.stderr.split())
    assert "16g memory (16384 MB)" in message and "2 workers of 1024 MB and 1 core" in message
    steps = json.loads((tmp_path / "runs" / CUTOFF / "run.json").read_text())["steps"]
    # validation is the first step on the cluster: it is the one that cannot start
    assert [s["status"] for s in steps] == ["failed", "not run", "not run", "not run"]
    assert "cannot grant an executor" in steps[0]["error"]
    print(f"misfit: command {seconds:.1f} s, validate step {steps[0]['seconds']} s")


def test_without_the_status_page_no_executor_is_an_error_after_the_wait(
    champions, cluster, tmp_path
):
    """The fallback when the master's web UI cannot be read: the session waits for its first
    executor ``spark_executor_wait`` seconds, then stops and says what it asked."""
    _, _, env = champions
    write_bank(SynthConfig(customers=300, seed=5), tmp_path / "bank")
    cluster.wait_ready(workers=2)
    closed = f"http://{LOOPBACK}:1"  # nothing listens: what the workers offer is unknown
    config = write_config(tmp_path / "cluster.toml", closed, spark_executor_wait=5)
    args = ["features", "--warehouse", str(tmp_path / "bank"), "--cutoffs", CUTOFF]
    args += ["--out", str(tmp_path / "features.parquet"), "--config", str(config)]
    args += ["--engine", "spark", "--spark-master", cluster.master, "--spark-memory", "16g"]
    started = time.monotonic()
    result = run_retain(args, spark_env(env), timeout=300)
    seconds = time.monotonic() - started
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert f"no executor registered at {cluster.master} within 5 s" in message, message[-2000:]
    assert "16g memory (16384 MB)" in message and "does not answer for it" in message
    assert not (tmp_path / "features.parquet").exists()
    print(f"fallback: failed after {seconds:.1f} s (JVM start + 5 s wait)")
