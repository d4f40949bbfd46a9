"""The `retain` command as a user runs it: a real subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import retain_process

RETAIN = [sys.executable, "-m", "retain"]


def run(*args: str) -> subprocess.CompletedProcess:
    return retain_process.run(list(args), timeout=300)


def test_help_lists_every_subcommand_with_one_line():
    result = run("--help")
    assert result.returncode == 0
    commands = (
        "synth",
        "validate",
        "profile",
        "features",
        "train",
        "backtest",
        "promote",
        "models",
        "score",
        "keys",
        "serve",
        "demo",
    )
    for command in commands:
        assert command in result.stdout


def test_keys_are_printed_once_stored_hashed_and_revocable(tmp_path):
    keys = tmp_path / "keys.json"
    no_snapshot = ("--scores", str(tmp_path / "not_scored"))
    added = run(
        "keys", "add", "--keys", str(keys), "--role", "rm", "--rm-id", "RM7", "--name", "anna",
        *no_snapshot,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "not checked" in added.stdout  # no snapshot: accepted, and said so
    key = added.stdout.strip().splitlines()[-1]
    assert key.startswith("rk_") and len(key) > 40 and key not in keys.read_text()
    listed = run("keys", "list", "--keys", str(keys), "--json", str(tmp_path / "k.json"))
    assert "anna" in listed.stdout and key not in listed.stdout
    assert json.loads((tmp_path / "k.json").read_text())["keys"][0]["rm_id"] == "RM7"
    assert run("keys", "add", "--keys", str(keys), "--role", "rm", "--name", "x").returncode == 2
    assert run("keys", "add", "--keys", str(keys), "--role", "boss", "--name", "y").returncode == 2
    assert run("keys", "revoke", "--keys", str(keys), "--name", "anna").returncode == 0
    from serving.api.auth import KeyRing

    assert KeyRing(keys).identify(f"Bearer {key}") is None
    # keys expire: by days or a date, never in the past; the list says which are stale
    soon = run(
        "keys", "add", "--keys", str(keys), "--role", "crm", "--name", "c", "--expires", "5d"
    )
    assert soon.returncode == 0, soon.stderr
    past = ("--expires", "2000-01-01")
    assert (
        run("keys", "add", "--keys", str(keys), "--role", "crm", "--name", "d", *past).returncode
        == 2
    )
    listed = run("keys", "list", "--keys", str(keys), "--json", str(tmp_path / "k.json"))
    states = {k["name"]: k["state"] for k in json.loads((tmp_path / "k.json").read_text())["keys"]}
    assert states["anna"] == "revoked" and states["c"].startswith("live, expires in 4 d")
    assert run("audit", "verify", "--log", str(tmp_path / "none.log")).returncode == 2


def test_an_rm_key_names_an_rm_of_the_snapshot_or_is_refused_with_the_nearest(tmp_path):
    snapshot = tmp_path / "scores"
    snapshot.mkdir()
    rms = pd.DataFrame({"rm_id": [f"RM{i:05d}" for i in range(1, 41)], "capacity": 200})
    rms.to_parquet(snapshot / "rms.parquet")
    keys = tmp_path / "keys.json"

    def add(rm_id: str, name: str) -> subprocess.CompletedProcess:
        return run(
            "keys", "add", "--keys", str(keys), "--scores", str(snapshot), "--role", "rm",
            "--rm-id", rm_id, "--name", name,
        )  # fmt: skip

    for wrong in ("17", "RM0017", "rm00017"):
        refused = add(wrong, f"rm-{wrong}")
        assert refused.returncode == 2, refused.stdout
        assert f"RM {wrong!r} is not one of the 40 RMs" in refused.stderr
        assert "nearest: RM00017" in refused.stderr, refused.stderr
    assert not keys.exists()  # nothing stored for a refused id
    accepted = add("RM00017", "rm-17")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(keys.read_text())["keys"][0]["rm_id"] == "RM00017"
    # integer RM ids, as a bank may keep them
    pd.DataFrame({"rm_id": [101, 102], "capacity": 200}).to_parquet(snapshot / "rms.parquet")
    assert add("102", "rm-102").returncode == 0
    assert "nearest: 101, 102" in add("103", "rm-103").stderr


def test_synth_writes_a_valid_warehouse_and_a_json_summary(tmp_path):
    out, summary = tmp_path / "wh", tmp_path / "synth.json"
    result = run(
        "synth",
        "--customers",
        "800",
        "--months",
        "8",
        "--seed",
        "5",
        "--out",
        str(out),
        "--json",
        str(summary),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(summary.read_text())
    assert payload["rows"]["customers"] == 800
    assert len(payload["months"]) == 8

    checked = run("validate", "--warehouse", str(out), "--json", str(tmp_path / "v.json"))
    assert checked.returncode == 0, checked.stdout
    assert json.loads((tmp_path / "v.json").read_text())["valid"] is True


def test_synth_rejects_a_date_that_is_not_a_month_end(tmp_path):
    result = run("synth", "--customers", "10", "--end", "2024-12-15", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "month-end" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _rewrite(path: Path, change) -> None:
    frame = pq.read_table(path).to_pandas()
    pq.write_table(pa.Table.from_pandas(change(frame), preserve_index=False), path)


@pytest.fixture
def faulty_bank(small_bank, tmp_path) -> Path:
    """A copy of the small bank with one fault of each kind the issue names."""
    bank = tmp_path / "faulty"
    shutil.copytree(small_bank, bank)
    part = "part-00000.parquet"
    _rewrite(bank / "customers" / part, lambda f: pd.concat([f, f.iloc[[0]]]))  # duplicate key

    def balance_faults(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        f.loc[f.index[0], "customer_id"] = 99_999_999  # orphan customer
        f.loc[f.index[1], "avg_daily_balance"] = -50.0  # negative balance
        f.loc[f.index[2], "product"] = "bitcoin_vault"  # unknown product
        return f

    _rewrite(bank / "balances" / part, balance_faults)

    def overlap(f: pd.DataFrame) -> pd.DataFrame:
        row = f[f["valid_to"].isna()].iloc[[0]].copy()
        row["valid_from"] = row["valid_from"] + pd.Timedelta(days=10)
        row["rm_id"] = f["rm_id"].iloc[-1]
        return pd.concat([f, row])

    _rewrite(bank / "rm_assignments" / part, overlap)
    return bank


def test_validate_reports_every_injected_fault_and_exits_1(faulty_bank, tmp_path):
    report = tmp_path / "violations.json"
    result = run("validate", "--warehouse", str(faulty_bank), "--json", str(report))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    found = {(v["table"], v["column"]): v for v in json.loads(report.read_text())["violations"]}
    expected = {
        ("customers", "customer_id"): "unique",
        ("balances", "customer_id"): "customers",
        ("balances", "avg_daily_balance"): ">= 0",
        ("balances", "product"): "products",
        ("rm_assignments", "valid_from, valid_to"): "overlap",
    }
    for key, rule_word in expected.items():
        assert key in found, (key, sorted(found))
        assert rule_word in found[key]["rule"], found[key]
        assert found[key]["count"] >= 1
        assert found[key]["examples"]
    for table, _ in expected:
        assert table in result.stdout


def test_validate_on_a_missing_directory_is_a_clear_error(tmp_path):
    result = run("validate", "--warehouse", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_killed_run_leaves_the_previous_output_and_no_scratch(tmp_path):
    import signal
    import time

    out = tmp_path / "wh"
    assert run("synth", "--customers", "300", "--months", "6", "--out", str(out)).returncode == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    child = subprocess.Popen(
        [*RETAIN, "synth", "--customers", "200000", "--seed", "9", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".wh.") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline, "generation never started"
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["wh"]


def test_config_show_prints_the_resolved_configuration(tmp_path):
    shown = run("config", "show", "--json", "-")
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)  # with --json - stdout is the JSON alone
    assert payload["churn"]["horizon_months"] == 3
    assert [t["name"] for t in payload["tiers"]][:2] == ["non_core", "core"]
    from retain.config import load_config, parse_config

    assert parse_config(payload) == load_config(None)  # what it shows reads back the same
    other = run("config", "show", "--config", "docs/other_bank.toml", "--json", "-")
    assert '"silver"' in other.stdout or "silver" in other.stdout


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[churn]\nhorizon = 3\n\n[lists]\nmin_risk = 2\n")
    result = run("config", "show", "--config", str(bad))
    assert result.returncode == 2
    assert "churn.horizon: unknown key" in result.stderr
    assert "lists.min_risk" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_finds_names_for_products_the_bank_does_not_have(small_bank, tmp_path):
    good = run("config", "check", "--warehouse", str(small_bank))
    assert good.returncode == 0, good.stdout + good.stderr
    config = tmp_path / "retain.toml"
    config.write_text('[product_labels.gold_account]\nzh = "积存金"\n')
    result = run(
        "config",
        "check",
        "--config",
        str(config),
        "--warehouse",
        str(small_bank),
        "--json",
        str(tmp_path / "c.json"),
    )
    assert result.returncode == 1
    found = json.loads((tmp_path / "c.json").read_text())["configuration"]
    assert found == [
        {
            "key": "product_labels.gold_account",
            "problem": "names a product the products table does not have",
        }
    ]


def test_score_refuses_a_cutoff_that_is_not_a_month_end(small_bank, tmp_path):
    result = run(
        "score",
        "--warehouse",
        str(small_bank),
        "--cutoff",
        "2024-12-15",
        "--out",
        str(tmp_path / "s"),
    )
    assert result.returncode == 2
    assert "not a month-end" in result.stderr and "Traceback" not in result.stderr


def test_a_month_missing_from_balances_is_named(small_bank, tmp_path):
    bank = tmp_path / "gap"
    shutil.copytree(small_bank, bank)
    for part in (bank / "balances").glob("*.parquet"):
        _rewrite(part, lambda f: f[pd.to_datetime(f["month"]) != pd.Timestamp("2024-05-31")])
    result = run(
        "features",
        "--warehouse",
        str(bank),
        "--cutoffs",
        "2024-09-30",
        "--out",
        str(tmp_path / "f.parquet"),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "2024-05-31" in result.stderr and "no rows" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_features_validate_the_warehouse_first(faulty_bank, tmp_path):
    result = run(
        "features",
        "--warehouse",
        str(faulty_bank),
        "--cutoffs",
        "2024-09-30",
        "--out",
        str(tmp_path / "f.parquet"),
    )
    assert result.returncode == 1
    assert "violation" in result.stderr and "unique key" in result.stderr
    assert not (tmp_path / "f.parquet").exists()


def test_a_mistyped_input_is_named_before_the_registry_is_asked(tmp_path):
    """A data scientist's typo (a task, a feature file, a flat table) is the first thing said,
    in about a second: nothing listens at the registry's address, and it is never reached."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # discard: nobody
    env |= {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    missing = str(tmp_path / "nope.parquet")
    for args, said in [
        (("train", "--features", missing, "--task", "loyalty"), "--task must be one of"),
        (("train", "--features", missing), f"feature file {missing} does not exist"),
        (("train", "--features", missing, "--task", "uplift"), "does not exist"),
        (("backtest", "--features", missing), f"feature file {missing} does not exist"),
        (("train", "--table", str(tmp_path / "t.csv"), "--target", "y"), "file not found"),
        (("score", "--warehouse", str(tmp_path / "nope"), "--cutoff", "2024-12-31"), "not exist"),
    ]:
        result = retain_process.run(args, env)
        assert result.returncode in (1, 2), args
        assert said in result.stderr and "registry" not in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, args


def test_an_output_that_cannot_be_written_is_one_line_naming_it(small_bank, tmp_path):
    """A folder mistyped as a file's path (or read-only): the output and the reason, exit 1,
    nothing half-written — never a traceback."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    for args, target in [
        (("synth", "--customers", "50", "--out"), blocker / "bank"),
        (
            ("features", "--warehouse", str(small_bank), "--cutoffs", "2024-12-31", "--out"),
            blocker / "f.parquet",
        ),
    ]:
        result = run(*args, str(target))
        said = " ".join(result.stderr.split())
        assert result.returncode == 1, (args, said[-2000:])
        assert f"error: cannot write {target}: {blocker} is a file, not a folder" in said, said
        assert "Traceback" not in result.stderr + result.stdout, args
    assert blocker.read_text() == "a file where a folder should be"
    folder = tmp_path / "features"  # a folder where the file should go: said before the build
    folder.mkdir()
    args = ("features", "--warehouse", str(small_bank), "--cutoffs", "2024-12-31")
    result = run(*args, "--out", str(folder))
    assert result.returncode == 1 and not list(folder.iterdir()), result.stderr[-2000:]
    assert f"error: cannot write {folder}: it is a folder" in result.stderr, result.stderr


def test_synth_never_replaces_a_folder_of_other_files(tmp_path):
    """`retain synth --out ~/work` must not wipe ~/work; an earlier bank (_meta.json) is
    replaced by the new one."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = run("synth", "--customers", "50", "--months", "6", "--out", str(folder))
    said = " ".join(result.stderr.split())
    assert result.returncode == 1 and "Traceback" not in said, said[-2000:]
    assert f"error: {folder} holds other files (notes.txt) and no _meta.json" in said, said
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    bank = tmp_path / "bank"
    for seed in ("1", "2"):  # the second replaces the first
        result = run(
            "synth", "--customers", "50", "--months", "6", "--seed", seed, "--out", str(bank)
        )
        assert result.returncode == 0, result.stderr[-2000:]
    assert '"seed": 2' in (bank / "_meta.json").read_text()


def test_a_feature_file_that_is_not_one_or_lacks_the_label_is_named(tmp_path):
    """Training on a file that is not parquet, a backtest of a label the file does not have:
    the file or the label and what there is instead, exit 1, never a traceback."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    (tmp_path / "notes.parquet").write_text("not parquet")
    features = tmp_path / "features.parquet"
    pd.DataFrame({"cutoff": ["2024-12-31"], "label_churn": [0.0]}).to_parquet(features)
    for args, said in [
        (("train", "--features", str(tmp_path / "notes.parquet")), "cannot be read as parquet"),
        (
            ("backtest", "--features", str(features), "--task", "cross_sell_yacht"),
            "no column 'label_cross_sell_yacht' in the feature file; it has ['label_churn']",
        ),
    ]:
        result = retain_process.run(args, env)
        assert result.returncode == 1, (args, result.stderr[-2000:])
        assert said in " ".join(result.stderr.split()), (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr + result.stdout, args


def test_a_database_that_does_not_answer_is_named_without_its_password(tmp_path):
    url = "postgresql://retain:s3cret@127.0.0.1:9/bank"  # discard port: nothing listens
    out = tmp_path / "f.parquet"
    for args in [
        ("validate", "--warehouse", url),
        ("features", "--warehouse", url, "--cutoffs", "2024-12-31", "--out", str(out)),
    ]:
        result = run(*args)
        said = " ".join(result.stderr.split())
        assert result.returncode == 2, (args, said[-2000:])
        assert said.startswith("error: cannot connect to postgresql://retain:***@127.0.0.1:9/bank")
        assert "s3cret" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr + result.stdout, args
    assert not out.exists()


def test_serve_refuses_a_keys_file_it_cannot_read_and_a_port_that_is_none(tmp_path):
    """Before anything starts: workers that could not read their keys would answer nobody."""
    keys = tmp_path / "keys.json"
    keys.write_text("[keys]\n")  # TOML, not the keys file `retain keys add` writes
    result = run("serve", "--keys", str(keys), "--port", "38999")
    said = " ".join(result.stderr.split())
    assert result.returncode == 2, said[-2000:]
    assert f"error: keys file {keys} is not a retain keys file" in said, said[-2000:]
    assert "nothing was started" in said and "Traceback" not in said
    for args in (("serve", "--port", "99999"), ("score", "--k", "0")):
        result = run(*args)
        assert result.returncode == 2 and "is not in the range" in result.stderr, args


def test_a_registry_that_does_not_answer_stops_scoring_before_the_validation(small_bank, tmp_path):
    """Nothing listens at the tracking server's address: one line naming the registry, at
    once (no retries), before the warehouse is validated — never a traceback."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",  # discard: nothing answers there
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    for command in ("score", "run"):
        where = ["--out", str(tmp_path / "s")] if command == "score" else []
        where += ["--runs-dir", str(tmp_path / "runs")] if command == "run" else []
        result = retain_process.run(
            [command, "--warehouse", str(small_bank), "--cutoff", "2024-09-30", *where],
            env,
            timeout=120,
        )
        said = " ".join(result.stderr.split())
        assert result.returncode == 1, (command, said[-2000:])
        assert "could not reach the model registry at http://127.0.0.1:9" in said, said[-2000:]
        assert "nothing was run" in said and "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "s").exists() and not (tmp_path / "runs").exists()


def test_every_command_of_the_registry_says_it_does_not_answer_in_one_line(tmp_path):
    """Training, backtests, promotion and the listings with a tracking server that is down:
    the registry's address and exit 1, never a traceback (each used to print one)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # discard: nobody
    env |= {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    features = tmp_path / "features.parquet"
    pd.DataFrame({"customer_id": [1]}).to_parquet(features)
    table = tmp_path / "table.csv"
    table.write_text("id,y\n1,0\n")
    for args in [
        ("train", "--features", str(features)),
        ("train", "--table", str(table), "--target", "y"),
        ("backtest", "--features", str(features)),
        ("promote", "--model", "churn"),
        ("models",),
        ("runs",),
    ]:
        result = retain_process.run(args, env)
        said = " ".join(result.stderr.split())
        assert result.returncode == 1, (args, said[-2000:])
        assert said.startswith("error: could not reach the model registry at http://127.0.0.1:9")
        assert "Traceback" not in result.stderr + result.stdout, args
