"""`make ui` shows the runs: the MLflow server it starts, on the demo's store, lists them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving.service_process import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_mlflow_ui_lists_the_training_runs_and_models(demo):
    root, summary = demo
    port = free_port()
    store = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    make = subprocess.run(["make", "-n", "ui"], cwd=ROOT, capture_output=True, text=True)
    assert "mlflow ui --backend-store-uri" in make.stdout  # the command `make ui` runs
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "ui",
            "--backend-store-uri",
            store,
            "--default-artifact-root",
            str(root / "mlruns" / "artifacts"),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert httpx.get(url + "/", timeout=10).status_code == 200
        experiments = httpx.get(
            url + "/api/2.0/mlflow/experiments/search", params={"max_results": 10}, timeout=10
        ).json()
        ids = [e["experiment_id"] for e in experiments["experiments"] if e["name"] == "retain"]
        runs = httpx.post(
            url + "/api/2.0/mlflow/runs/search",
            json={"experiment_ids": ids, "max_results": 100},
            timeout=10,
        ).json()
        names = {r["info"]["run_name"] for r in runs["runs"]}
        assert "churn" in names and "train all" in names
        models = httpx.get(url + "/api/2.0/mlflow/registered-models/search", timeout=10).json()
        assert set(summary["training"]["models"]) <= {
            m["name"] for m in models["registered_models"]
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
