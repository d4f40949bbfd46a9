"""`retain demo` as people read it: its help, its output in a log (not a terminal), and the
language it writes in — the chain's steps replaced by stand-ins that record what they were
given; the real demo's output is the session's `demo` fixture."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import features.materialize
import synthetic.bank
import training.promote
import training.run
from retain import demo_commands
from retain.cli import app

EMPTY_ROW = re.compile(r"^\s*[┃│](\s*[┃│])+\s*$")  # a table row with nothing in it


@pytest.fixture
def stand_ins(monkeypatch, tmp_path) -> dict:
    """Every step of the demo replaced: what scoring was given is recorded."""
    given: dict = {}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")

    def write_bank(synth, warehouse, ladder=None, on_chunk=lambda done, total: None):
        on_chunk(1, 1)

    def write_features(warehouse, cutoffs, path, bank, step=lambda text: None):
        step("panel")

    def train_task(path, task, config, warn, trials, progress, bank=None, plots=True):
        given["plots"] = plots
        progress(1, 1)
        figures = {"test_auc": 0.87, "lightgbm_defaults_test_auc": 0.86, "ece": 0.01}
        return {"models": {"churn": "1"}, "per_model": {"churn": figures}}

    def score_month(warehouse, day, out, bank, k):
        given["bank"] = bank
        out.mkdir(parents=True, exist_ok=True)  # the demo links the month for monitoring
        (out / "scores.parquet").write_bytes(b"")
        return {
            "cutoff": day.isoformat(),
            "customers_scored": 10,
            "customers_explained": 5,
            "lists": 1,
            "listed_customers": 3,
            "models": {"churn": "1"},
            "seconds": 0.1,
            "out": str(out),
        }

    monkeypatch.setattr(synthetic.bank, "write_bank", write_bank)
    monkeypatch.setattr(features.materialize, "write_features", write_features)
    monkeypatch.setattr(training.run, "train_task", train_task)
    monkeypatch.setattr(
        training.promote,
        "promote",
        lambda name: {"model": name, "challenger": "1", "champion": "1"},
    )
    monkeypatch.setattr(demo_commands, "score_month", score_month)
    return given


def run_demo(tmp_path, *args: str):
    config = tmp_path / "retain.toml"
    config.write_text('language = "zh"\n', encoding="utf-8")
    return CliRunner().invoke(
        app, ["demo", "--config", str(config), "--out", str(tmp_path / "out"), *args]
    )


def test_the_demo_writes_in_the_configured_language_unless_told(stand_ins, tmp_path):
    result = run_demo(tmp_path)
    assert result.exit_code == 0, result.output
    assert stand_ins["bank"].language == "zh"
    result = run_demo(tmp_path, "--lang", "en")
    assert result.exit_code == 0, result.output
    assert stand_ins["bank"].language == "en"


def test_the_demo_draws_the_training_plots_unless_told(stand_ins, tmp_path):
    assert run_demo(tmp_path).exit_code == 0
    assert stand_ins["plots"] is True
    assert run_demo(tmp_path, "--no-plots").exit_code == 0
    assert stand_ins["plots"] is False


def test_the_demo_in_a_log_shows_every_step_and_no_empty_header(stand_ins, tmp_path):
    output = run_demo(tmp_path).output  # CliRunner's output is not a terminal
    for step in ("1/5", "2/5 features", "3/5", "4/5", "5/5"):
        assert step in output, step
    assert not [line for line in output.splitlines() if EMPTY_ROW.match(line)], output


def test_the_real_demos_output_in_a_log(demo):
    root, _ = demo
    output = (root / "demo_output.txt").read_text(encoding="utf-8")
    assert "2/5 features at" in output
    assert not [line for line in output.splitlines() if EMPTY_ROW.match(line)], output


def test_the_demos_help_keeps_its_brackets():
    result = subprocess.run(
        [sys.executable, "-m", "retain", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "[synthetic] section" in result.stdout
    assert "configuration's language" in result.stdout


def test_a_bank_too_small_to_learn_from_is_one_line_with_what_to_do(
    stand_ins, tmp_path, monkeypatch, capsys
):
    from training.dataset import DatasetError

    def too_small(*args, **kwargs):
        raise DatasetError("label_churn: the train cutoffs hold 4 positive(s); at least 10")

    monkeypatch.setattr(training.run, "train_task", too_small)
    result = run_demo(tmp_path, "--customers", "10")
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, DatasetError)  # handled: no traceback
    said = " ".join((capsys.readouterr().err + result.output).split())
    assert "error: label_churn: the train cutoffs hold 4 positive(s)" in said, said
    assert "try --customers 6000" in said, said
