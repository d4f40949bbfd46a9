"""Where the store keeps a new experiment's artifacts: next to a SQLite store this process writes
to; where the server says for a tracking server (the real server: tests/deploy)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from models.registry import artifact_location, is_server, use_store


@pytest.mark.parametrize(
    ("uri", "server"),
    [
        ("http://mlflow.bank.internal:5000", True),
        ("HTTPS://mlflow.bank.internal", True),
        ("databricks", True),
        ("databricks://profile", True),
        ("sqlite:////srv/mlruns/mlflow.db", False),
        ("postgresql+psycopg://me@db/mlflow", False),
        ("file:///srv/mlruns", False),
    ],
)
def test_a_server_is_told_apart_from_a_store_this_process_writes(uri, server):
    assert is_server(uri) is server


def test_a_sqlite_store_keeps_artifacts_beside_it_and_a_server_chooses_its_own(tmp_path):
    db = tmp_path / "store" / "mlflow.db"
    assert artifact_location(f"sqlite:///{db}") == (tmp_path / "store" / "artifacts").as_uri()
    assert artifact_location("postgresql://me@db/mlflow", tmp_path) == (
        (tmp_path / "artifacts").as_uri()
    )
    assert artifact_location("http://127.0.0.1:5000", tmp_path) is None


def test_use_store_creates_the_experiment_with_its_artifacts_beside_a_sqlite_store(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_store(Path("elsewhere"), experiment="placed")
    found = mlflow.get_experiment_by_name("placed")
    assert found.artifact_location == (tmp_path / "artifacts").as_uri()
    use_store(Path("elsewhere"), experiment="placed")  # a second call finds it, adds nothing
    assert [e.name for e in mlflow.search_experiments()].count("placed") == 1
