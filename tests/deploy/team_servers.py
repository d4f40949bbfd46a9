"""A team's servers on loopback for the deploy tests: PostgreSQL (tests/features/postgres_server.py)
as the backend store of a real ``mlflow server`` that serves the artifacts itself
(``--artifacts-destination DIR --serve-artifacts``: clients upload and download through it,
``mlflow-artifacts:`` URIs), and the retain CLI run as a user would, from a folder of its own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from features.targets import CHURN
from tests.features.postgres_server import PostgresServer, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MlflowServer:
    """``mlflow server`` over ``backend`` (a SQLAlchemy URL) with artifacts in ``artifacts``."""

    backend: str
    artifacts: Path
    log: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        """Start it (one worker, loopback only); does not wait: see :meth:`wait_healthy`."""
        self.port = self.port or free_port()
        mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
        args = [
            mlflow,
            "server",
            "--backend-store-uri",
            self.backend,
            "--artifacts-destination",
            str(self.artifacts),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # docs/deploy.md
            )
        return self

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"mlflow server not healthy after {timeout}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:  # a throwaway server: no need to wait long for its job runner to wind down
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def sqlalchemy_url(postgres: PostgresServer) -> str:
    """The server's database for SQLAlchemy with psycopg 3 (plain ``postgresql://`` would ask
    for psycopg2, which the lock does not have)."""
    return postgres.url.replace("postgres://", "postgresql+psycopg://", 1)


@dataclass(frozen=True)
class Team:
    """The servers and the folder a team member works in (no retain.toml, no mlruns/)."""

    mlflow: MlflowServer
    work: Path
    env: dict

    @property
    def artifacts(self) -> Path:
        return self.mlflow.artifacts

    def retain(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """``retain ARGS`` in the work folder against the tracking server."""
        return subprocess.run(
            [sys.executable, "-m", "retain", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            cwd=self.work,
        )


def team_env(tracking_uri: str) -> dict:
    """The environment of a team member's shell: the tracking server, this checkout's code."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PYTHONPATH": path,
        "OMP_WAIT_POLICY": "PASSIVE",
        "BENTOML_DO_NOT_TRACK": "True",
    }


def assert_scores_as_scored(url: str, token: str, scores_dir: Path, take: slice) -> None:
    """The service at ``url`` answers the ``take`` customers of a scored month by id with the
    churn probabilities ``retain score`` wrote."""
    scores = pd.read_parquet(scores_dir / "scores.parquet").set_index("customer_id")
    wanted = scores.index[take].tolist()
    answered = httpx.post(
        f"{url}/v1/score",
        json={"customer_ids": wanted},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert answered.status_code == 200, answered.text
    got = {r["customer_id"]: r["churn_probability"] for r in answered.json()["results"]}
    assert got == pytest.approx(scores.loc[wanted, CHURN.score].to_dict())
