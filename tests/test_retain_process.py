"""The suite's way to run `python -m retain` (tests/retain_process.py, forked from a server that
imported the libraries) answers as a fresh interpreter does: the same output, errors and exit
codes, the environment and directory it is given, and a timeout that stops it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from synthetic.bank import write_bank
from synthetic.config import SynthConfig
from tests.retain_process import run


def fresh(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "retain", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def test_forked_commands_answer_as_fresh_ones(tmp_path):
    write_bank(SynthConfig(customers=200, months=6, seed=4), tmp_path / "bank")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("RETAIN_TESTS_FRESH", None)
    commands = [
        ["--help"],
        ["validate", "--warehouse", "bank"],  # relative: the directory given is used
        ["validate", "--warehouse", "no-such-bank"],
        ["train", "--task", "loyalty", "--features", "x.parquet"],
        ["features", "--warehouse", "bank", "--cutoffs", "2030-01-31", "--out", "f.parquet"],
        ["models"],
    ]
    assert run(["models"], env, cwd=tmp_path).returncode == 0  # the store made, once
    for args in commands:
        forked, started = run(args, env, cwd=tmp_path), fresh(args, env, tmp_path)
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            started.returncode,
            started.stdout,
            started.stderr,
        ), args
    assert [run(a, env, cwd=tmp_path).returncode for a in commands] == [0, 0, 2, 2, 2, 0]


def test_the_environment_given_is_the_one_seen_and_a_timeout_stops_the_command(tmp_path):
    store = tmp_path / "elsewhere.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    env.pop("RETAIN_TESTS_FRESH", None)
    assert run(["models"], env, cwd=tmp_path).returncode == 0
    assert store.is_file()  # the command's registry is the one its environment names
    assert str(store) not in os.environ.get("MLFLOW_TRACKING_URI", "")
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run(["synth", "--customers", "200000", "--out", str(tmp_path / "big")], timeout=2)
    assert time.monotonic() - started < 30
