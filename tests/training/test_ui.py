"""`make ui` shows the runs: the MLflow server it starts, on the demo's store, lists them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from tests.serving.service_process import free_port

ROOT = Path(__file__).resolve().parents[2]


def ui_command(store: str) -> str:
    """The command `make ui` runs on ``store`` (from ``make -n``: the Makefile's own line)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    make = subprocess.run(["make", "-n", "ui"], cwd=ROOT, capture_output=True, text=True, env=env)
    text = make.stdout.replace("\\\n", " ")
    command = re.search(r"(?:^|\s)\*\) (.*?);;", text, re.S).group(1)  # the branch for a file
    return " ".join(command.split())


def test_the_mlflow_ui_lists_the_training_runs_and_models(demo):
    root, summary = demo
    port = free_port()
    store = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    command = ui_command(store)
    assert f"mlflow ui --backend-store-uri {store}" in command
    server = subprocess.Popen(
        f"{command} --port {port} --host 127.0.0.1",
        shell=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
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
        # one worker and no job runner: MLflow's server jobs (huey consumers) are not started
        started = [" ".join(p.cmdline()) for p in psutil.Process(server.pid).children(True)]
        assert not [c for c in started if "huey" in c or "_job_runner" in c], started
        assert sum("multiprocessing.spawn" in c for c in started) <= 1, started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
