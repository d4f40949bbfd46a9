"""Shared fixtures: small synthetic banks, and one demo run (models + scores), once per session."""

from __future__ import annotations

import json
import os

# before LightGBM loads: waiting OpenMP threads sleep instead of spinning (see retain/cli.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# `make test` runs two workers on two cores: one OpenMP thread each (LightGBM, numpy). The trees
# are the same (deterministic, column-wise histograms); two threads per worker on the suite's
# small banks cost half as much CPU again for no time (docs/design.md §10)
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from synthetic.bank import write_bank
from synthetic.config import SynthConfig

# Spark's JVMs here live for a minute on banks of a few thousand rows: the JIT's optimising
# compiler (C2) and the parallel collector's threads cost them more than they give back. With
# the client compiler only and one collector thread, the Spark tests of tests/features took
# 134.7 s instead of 167.8 s alone, and the JVM of one validation 50 CPU-s instead of 85. The
# driver (all of local mode) reads SPARK_SUBMIT_OPTS, a standalone master and worker
# SPARK_DAEMON_JAVA_OPTS; a bank's own Spark keeps its JVM defaults.
for variable in ("SPARK_SUBMIT_OPTS", "SPARK_DAEMON_JAVA_OPTS"):
    os.environ.setdefault(variable, "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def small_bank(tmp_path_factory) -> Path:
    """3,000 customers × 24 months: enough for pipelines, quick to make (~1 s)."""
    out = tmp_path_factory.mktemp("banks") / "small"
    write_bank(SynthConfig(customers=3_000, seed=7), out)
    return out


@pytest.fixture(scope="session")
def bank_20k(tmp_path_factory) -> Path:
    """20,000 customers × 24 months: the size the statistical acceptance checks use."""
    out = tmp_path_factory.mktemp("banks") / "bank20k"
    write_bank(SynthConfig(customers=20_000, seed=11), out)
    return out


@pytest.fixture(scope="session")
def features_20k(bank_20k, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("features") / "features.parquet"
    result = run_retain(
        [
            "features",
            "--warehouse",
            str(bank_20k),
            "--cutoffs",
            "2023-04-30:2024-12-31",
            "--out",
            str(out),
            "--json",
            str(out.with_suffix(".json")),
        ],
        dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    return pd.read_parquet(out)


# `make test` runs two xdist workers (--dist loadgroup). Tests that share an expensive session
# fixture go to one worker as one group, so it is built once: the demo run and everything made
# from it, the deploy tests' team of servers, the PostgreSQL server. Every other test travels
# with its module, so module fixtures are not built twice either.
GROUP = pytest.StashKey[str]()
SHARED_SESSIONS = {
    "demo": {"demo", "champions", "scored", "site", "demo_models"},
    "team": {"team", "trained", "scored_month"},
    "postgres": {"postgres_url"},
}


# The groups that took longest (worker-seconds of a clean-clone `make test`, 2-core machine):
# sent out first (`--no-loadscope-reorder` keeps this order), so that the last ones the two
# workers share out are the short ones and neither waits long for the other at the end
LONGEST_FIRST = (
    "demo",  # 922 s
    "tests/test_other_bank.py",  # 136 s
    "tests/notebooks/test_notebooks.py",  # 102 s
    "tests/features/test_schema_spark.py",  # 93 s
    "tests/retain/test_cli.py",  # 83 s
    "tests/training/test_train.py",  # 76 s
    "tests/training/test_promote.py",  # 73 s
    "tests/features/test_spark_parity.py",  # 68 s
    "tests/features/test_months.py",  # 65 s
    "postgres",  # 59 s
    "tests/training/test_flat_train.py",  # 51 s
    "tests/features/test_leakage.py",  # 47 s
)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        group = next((g for g, names in SHARED_SESSIONS.items() if used & names), None)
        group = group or item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
        if config.getoption("loadgroup", False):  # an xdist worker under --dist loadgroup
            # xdist 3.8 sends a group by appending it to the node id, but writes it where
            # pytest 9.2 no longer reads the id (``_nodeid``; now ``_id``): without this every
            # test travels alone, each worker builds the demo, a module's tests split up
            item._id = type(item._id).parse(f"{item.nodeid}@{group}")
        item.stash[GROUP] = group
    rank = {group: k for k, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.stash[GROUP], len(rank)))  # stable: order within


SCORED_CUTOFF = "2024-09-30"  # the truth of the next 3 months is known: fidelity can be measured


@dataclass(frozen=True)
class Scored:
    bank: Path
    store: Path
    env: dict
    out: Path
    summary: dict


def run_retain(args: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m retain ARGS` with ``env`` (tests/retain_process.py)."""
    from tests.retain_process import run

    return run(args, env, timeout=timeout)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """`retain demo` on a 6k bank into a private MLflow store: (output folder, its summary).
    In English whatever ./retain.toml says (tests read the lists' English texts); what it
    printed, not to a terminal, is kept in ``demo_output.txt``."""
    root = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"}
    (root / "mlruns").mkdir()
    result = run_retain(
        [
            "demo",
            "--customers",
            "6000",
            "--seed",
            "5",
            "--lang",
            "en",
            "--no-plots",  # no test reads them (tests/training/test_train.py does)
            "--out",
            str(root),
            "--json",
            str(root / "demo.json"),
        ],
        env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    (root / "demo_output.txt").write_text(result.stdout, encoding="utf-8")
    return root, json.loads((root / "demo.json").read_text())


@pytest.fixture(scope="session")
def champions(demo) -> tuple[Path, Path, dict]:
    """(bank, store folder, environment) with every model of the bank promoted to champion."""
    root, _ = demo
    store = root / "mlruns"
    return (
        root / "warehouse",
        store,
        {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"},
    )


@pytest.fixture(scope="session")
def scored(champions, tmp_path_factory) -> Scored:
    bank, store, env = champions
    out = tmp_path_factory.mktemp("scored") / "scores"
    summary_path = out.parent / "summary.json"
    result = run_retain(
        [
            "score",
            "--warehouse",
            str(bank),
            "--cutoff",
            SCORED_CUTOFF,
            "--out",
            str(out),
            "--lang",
            "en",
            "--json",
            str(summary_path),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return Scored(bank, store, env, out, json.loads(summary_path.read_text()))


@pytest.fixture(scope="session")
def site(scored, tmp_path_factory):
    """One real `retain serve` (2 workers) over the scored month for the API, contract, page
    and agreement tests: crm, admin and four rm keys (tests/serving/service_process.py)."""
    from tests.serving.service_process import start_site

    started = start_site(scored, tmp_path_factory.mktemp("site"))
    try:
        yield started
    finally:
        started.service.stop()
