"""retain against a team's MLflow tracking server (``MLFLOW_TRACKING_URI=http://…``): a real
``mlflow server`` on PostgreSQL that serves the artifacts itself. train, promote, runs, models,
score, serve and monitor all work through it, and nothing lands on the client's disk as a store.
The servers, the training and the scored month are the session's (tests/deploy/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.targets import CHURN, model_versions
from models.artifact import load_verified
from models.registry import CHAMPION, EVALUATION_ROWS
from models.retain_pyfunc import BOOSTER_FILE
from tests.deploy.team_servers import Team, assert_scores_as_scored
from tests.serving.service_process import Service, add_key, free_port

# minutes of real servers (PostgreSQL, mlflow server, a Bento build): run by `make bench`,
# kept out of `make test` for the suite's 15-minute budget
pytestmark = pytest.mark.slow


def client(team: Team) -> MlflowClient:
    return MlflowClient(tracking_uri=team.mlflow.url, registry_uri=team.mlflow.url)


def test_models_and_their_test_rows_are_kept_by_the_server(trained):
    team, store = trained.team, client(trained.team)
    experiment = store.get_experiment_by_name("retain")
    # the server's default root, which every client reaches — never a folder of this machine
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment
    assert not (team.work / "mlruns").exists()
    boosters = sorted(team.artifacts.rglob(BOOSTER_FILE))
    rows = sorted(team.artifacts.rglob(EVALUATION_ROWS.rsplit("/", 1)[-1]))
    models = trained.training["models"]
    assert len(models) >= 3, models  # churn, upgrade and at least one product
    assert len(boosters) == len(models), (boosters, models)
    assert len(rows) == len(models), rows
    for name, version in models.items():
        champion = store.get_model_version_by_alias(name, CHAMPION)
        assert str(champion.version) == str(version), (name, champion.version, version)
        assert champion.source.startswith(("models:/", "mlflow-artifacts:")), champion.source


@pytest.fixture
def on_the_server(trained):
    """This process's MLflow pointed at the team's server, and back afterwards."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(trained.team.mlflow.url)
    mlflow.set_registry_uri(trained.team.mlflow.url)
    try:
        yield trained.team
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def test_mlflow_and_retain_load_the_same_champion_from_the_server(on_the_server):
    verified = load_verified("churn", alias=CHAMPION)  # downloaded, hashes checked
    rows = pd.read_parquet(on_the_server.work / "features.parquet").head(200)[verified.features]
    mlflows = mlflow.pyfunc.load_model("models:/churn@champion")  # MLflow's own loader
    p = np.asarray(mlflows.predict(rows), dtype="float64").ravel()
    np.testing.assert_allclose(p, verified.predict(rows), rtol=0, atol=1e-9)


def test_runs_and_models_list_what_the_server_holds(trained):
    team = trained.team
    runs = team.retain("runs", "--json", "runs.json")
    assert runs.returncode == 0, runs.stderr[-3000:]
    listed = json.loads((team.work / "runs.json").read_text())["runs"]
    assert trained.training["run_id"] in {r["run_id"] for r in listed}
    models = team.retain("models", "--json", "models.json")
    assert models.returncode == 0, models.stderr[-3000:]
    rows = json.loads((team.work / "models.json").read_text())["models"]
    champions = {r["name"]: r["version"] for r in rows if CHAMPION in r["aliases"]}
    assert champions == {k: str(v) for k, v in trained.training["models"].items()}


def test_the_month_is_scored_by_the_champions_on_the_server(scored_month, trained):
    scores = pd.read_parquet(scored_month.out / "scores.parquet")
    versions = model_versions(scores.columns, lambda c: scores[c].iloc[0])
    assert versions == {k: str(v) for k, v in trained.training["models"].items()}
    assert scores[CHURN.score].between(0, 1).all()


@pytest.fixture(scope="module")
def service(scored_month, tmp_path_factory):
    """`retain serve` (one worker) from the work folder, loading the champions over HTTP;
    started, not waited for (it boots while the monitor runs)."""
    team, folder = scored_month.team, tmp_path_factory.mktemp("served")
    keys = folder / "keys.json"
    token = add_key(keys, team.env, "--role", "crm", "--name", "crm-system")
    port = free_port()
    log = folder / "service.log"
    args = [
        *("serve", "--port", str(port), "--workers", "1", "--keys", str(keys)),
        *("--audit", str(folder / "audit.log"), "--scores", str(scored_month.out)),
        *("--outcomes", str(folder / "outcomes.db")),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "retain", *args],
            env=team.env,
            cwd=team.work,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Service(f"http://127.0.0.1:{port}", process, log)
    try:
        yield started, token
    finally:
        started.stop()


def test_monitor_reads_the_training_run_from_the_server_and_logs_to_it(scored_month, service):
    team, store = scored_month.team, client(scored_month.team)
    reference = store.get_model_version_by_alias("churn", CHAMPION).run_id
    result = team.retain(
        "monitor", "--reference", reference, "--current", "scores", "--json", "monitor.json"
    )
    # 2 is an act-level alert about the data, still a finished monitor; 1 would be a failure
    assert result.returncode in (0, 2), result.stderr[-3000:] + result.stdout[-3000:]
    summary = json.loads((team.work / "monitor.json").read_text())
    assert reference in summary["reference"]["source"]
    assert summary["reference"]["rows"] > 0
    logged = {a.path for a in store.list_artifacts(summary["run_id"])}
    assert {"monitor.json", "monitor.html"} <= logged, logged
    assert list(team.artifacts.rglob("monitor.html")), "the report is not on the server"


def test_serve_answers_with_the_champions_from_the_server(service, scored_month):
    started, token = service
    started.wait_ready()
    assert httpx.get(f"{started.url}/readyz", timeout=10).status_code == 200
    assert_scores_as_scored(started.url, token, scored_month.out, slice(None, 3))
