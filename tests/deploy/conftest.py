"""One team's servers for the deploy tests, once per session: PostgreSQL + ``mlflow server``
(``team``), a small bank's models trained and promoted through it (``trained``) and its month
scored (``scored_month``). The MLflow-server tests and the Bento test share them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.team_servers import MlflowServer, Team, sqlalchemy_url, team_env
from tests.features.postgres_server import PostgresServer, find_bindir

# small, and cheap to train: churn, upgrade and the cross-sell products with enough buyers
# (3 of them here; the others are skipped, as on any small bank)
CUSTOMERS, SEED = 1_000, 7
# 2024-09-30 tests, 2024-06-30 validates, 2023-12-31…2024-03-31 train (3-month embargoes)
CUTOFFS = "2023-12-31:2024-12-31"
SCORED = "2024-09-30"  # matured: the monitor measures the realised figures too


@pytest.fixture(scope="session")
def team(tmp_path_factory):
    """PostgreSQL and an MLflow tracking server on it, and a bank in the work folder (built while
    the server starts)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl); install postgresql or run `make pg`")
    root = tmp_path_factory.mktemp("team")
    (root / "artifacts").mkdir()
    (root / "work").mkdir()
    postgres = PostgresServer(bindir).start()
    server = MlflowServer(sqlalchemy_url(postgres), root / "artifacts", root / "mlflow.log")
    try:
        server.start()
        team = Team(server, root / "work", team_env(server.url))
        made = team.retain("synth", "--customers", str(CUSTOMERS), "--seed", str(SEED))
        assert made.returncode == 0, made.stderr[-3000:]
        built = team.retain("features", "--cutoffs", CUTOFFS, "--out", "features.parquet")
        assert built.returncode == 0, built.stderr[-3000:]
        server.wait_healthy()
        yield team
    finally:
        server.stop()
        postgres.stop()


@dataclass(frozen=True)
class Trained:
    team: Team
    training: dict  # `retain train --json`
    promotions: dict  # `retain promote --all --json`


@pytest.fixture(scope="session")
def trained(team) -> Trained:
    """Every model trained through the server and promoted to champion."""
    result = team.retain(
        "train", "--features", "features.parquet", "--task", "all", "--json", "train.json"
    )
    assert result.returncode == 0, result.stderr[-3000:] + team.mlflow.tail()
    promoted = team.retain("promote", "--all", "--json", "promote.json")
    assert promoted.returncode == 0, promoted.stderr[-3000:] + promoted.stdout[-3000:]
    return Trained(
        team,
        json.loads((team.work / "train.json").read_text()),
        json.loads((team.work / "promote.json").read_text()),
    )


@dataclass(frozen=True)
class ScoredMonth:
    team: Team
    out: Path
    summary: dict


@pytest.fixture(scope="session")
def scored_month(trained) -> ScoredMonth:
    """The month scored by the champions the server holds."""
    team = trained.team
    result = team.retain(
        "score", "--cutoff", SCORED, "--out", "scores", "--lang", "en", "--json", "score.json"
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return ScoredMonth(
        team, team.work / "scores", json.loads((team.work / "score.json").read_text())
    )
