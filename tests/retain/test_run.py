"""`retain run`: the monthly job's layout, its resume after a failure, and its equality with
`retain score` — on the 6k demo bank with its promoted models (the `scored` session fixture)."""

from __future__ import annotations

import json
import os

import pandas as pd

from retain.run_commands import warehouse_fingerprint
from tests.conftest import SCORED_CUTOFF, run_retain
from tests.serving.test_score import booster_file


def statuses(folder) -> dict[str, str]:
    return {s["name"]: s["status"] for s in json.loads((folder / "run.json").read_text())["steps"]}


def test_a_run_that_failed_late_resumes_skipping_finished_steps_and_equals_retain_score(
    scored, tmp_path
):
    runs = tmp_path / "runs"
    folder = runs / SCORED_CUTOFF
    args = ["run", "--cutoff", SCORED_CUTOFF, "--warehouse", str(scored.bank)]
    args += ["--runs-dir", str(runs), "--lang", "en"]
    # a real failure in the last step: the reference it is told to monitor against was never
    # scored (what would stop the score step — a missing or tampered champion, a cutoff outside
    # the warehouse — stops the run before any step: see the end of this test)
    failed = run_retain([*args, "--reference", "2024-06-30"], scored.env)
    assert failed.returncode == 1, failed.stderr
    assert "step monitor failed" in failed.stderr
    assert "no scored cutoff 2024-06-30" in " ".join(failed.stderr.split())
    assert "Traceback" not in failed.stderr + failed.stdout
    assert statuses(folder) == {
        "validate": "done",
        "features": "done",
        "score": "done",
        "monitor": "failed",
    }
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert json.loads((folder / "validate.json").read_text())["valid"] is True
    assert not (folder / "monitor").exists()
    scored_at = (folder / "scores" / "summary.json").stat().st_mtime_ns
    built = (folder / "features.parquet").stat().st_mtime_ns

    resumed = run_retain([*args, "--json", str(tmp_path / "run.json")], scored.env)
    summary = json.loads((tmp_path / "run.json").read_text())
    # the first monthly run (reference: the churn champion's training run) of the unchanged
    # bank it was trained on is quiet: each score judged on its own model's test rows
    assert resumed.returncode == 0 and summary["alert"] != "act", resumed.stdout
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["validate"]["status"] == steps["features"]["status"] == "skipped (done)"
    assert steps["score"]["status"] == "skipped (done)"
    assert steps["monitor"]["status"] == "done"
    assert steps["monitor"]["detail"]["alert"] in ("ok", "watch")
    assert (folder / "monitor" / "monitor.json").is_file()
    assert (folder / "monitor" / "monitor.html").is_file()
    assert all(s["seconds"] >= 0 and s["peak_rss_mb"] > 0 for s in summary["steps"])
    done = [s for s in summary["steps"] if s["status"] == "done"]
    assert done and all(s["cpu_seconds"] > 0 for s in done)
    assert (folder / "features.parquet").stat().st_mtime_ns == built  # not rebuilt
    assert (folder / "scores" / "summary.json").stat().st_mtime_ns == scored_at  # nor scored
    for line in ("validate", "features", "score", "monitor", "skipped (done)", "peak RSS MB"):
        assert line in resumed.stdout

    # the layout others rely on; scores/ is exactly what `retain score --out` writes
    assert sorted(p.name for p in (folder / "scores").iterdir()) == sorted(
        p.name for p in scored.out.iterdir()
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(folder / "scores" / "scores.parquet"),
        pd.read_parquet(scored.out / "scores.parquet"),
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(folder / "scores" / "features.parquet"),
        pd.read_parquet(folder / "features.parquet"),
    )
    assert sorted(p.name for p in (folder / "scores" / "lists").iterdir()) == sorted(
        p.name for p in (scored.out / "lists").iterdir()
    )

    again = run_retain(args, scored.env)
    assert statuses(folder)["score"] == "skipped (done)", again.stderr

    # a champion that fails its checks stops even a forced run before its first step, in
    # seconds: the finished run's record and outputs stay as they were
    record = (folder / "run.json").read_bytes()
    booster = booster_file(scored.store, "churn")
    original = booster.read_bytes()
    try:
        booster.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
        refused = run_retain([*args, "--force"], scored.env)
    finally:
        booster.write_bytes(original)
    assert refused.returncode == 1, refused.stderr
    assert "does not match the training tag" in refused.stderr
    assert "nothing was run" in refused.stderr and "step " not in refused.stderr
    assert (folder / "run.json").read_bytes() == record
    assert (folder / "features.parquet").stat().st_mtime_ns == built


def test_the_warehouse_fingerprint_sees_a_changed_file(tmp_path):
    (tmp_path / "balances").mkdir()
    part = tmp_path / "balances" / "part-0.parquet"
    part.write_bytes(b"one")
    before = warehouse_fingerprint(str(tmp_path))
    assert warehouse_fingerprint(str(tmp_path)) == before
    os.utime(part, ns=(1, 1))
    assert warehouse_fingerprint(str(tmp_path)) != before
    assert warehouse_fingerprint("postgres://user@host/db") is None  # always re-run
