"""`retain score` in batches of customers gives the month it gives in one batch: the demo
month (the `scored` session fixture, one batch of ~5k customers) scored again 500 customers at
a time — scores, reasons, offers, assignment, lists, files and summary equal."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq

from tests.conftest import SCORED_CUTOFF

BATCH = 500
TABLES = ("scores", "lists", "growth", "assignments", "rms", "history", "contacts")


def score_in_batches(scored, out) -> subprocess.CompletedProcess:
    code = f"""
from datetime import date
from pathlib import Path
from models.registry import use_store
from retain.options import bank_config, with_options
from serving.batch import score_warehouse
use_store()
bank = with_options(bank_config(None), language="en")
score_warehouse(
    {str(scored.bank)!r}, date.fromisoformat({SCORED_CUTOFF!r}), Path({str(out)!r}), bank, "en",
    features_path=Path({str(scored.out / "features.parquet")!r}), batch_rows={BATCH},
)
"""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=scored.env, timeout=600
    )


def test_scoring_in_batches_of_500_equals_scoring_in_one(scored, tmp_path):
    out = tmp_path / "batched"
    result = score_in_batches(scored, out)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = pq.read_metadata(out / "scores.parquet").num_rows
    assert rows > 8 * BATCH  # many batches: the ranking spans them
    assert pq.ParquetFile(out / "scores.parquet").num_row_groups >= rows // BATCH
    for name in TABLES:
        batched = pd.read_parquet(out / f"{name}.parquet")
        whole = pd.read_parquet(scored.out / f"{name}.parquet")
        assert len(whole) > 0, name
        pd.testing.assert_frame_equal(batched, whole, obj=name)
    scores = pd.read_parquet(out / "scores.parquet")
    assert scores["reason_1_text_en"].notna().sum() > 100
    assert scores["growth_reason_1_text_en"].notna().sum() > 10
    assert scores["list_id"].notna().sum() > 100
    files = sorted(p.relative_to(out) for p in (out / "lists").rglob("*.csv"))
    assert files == sorted(p.relative_to(scored.out) for p in (scored.out / "lists").rglob("*.csv"))
    differ = [f for f in files if not filecmp.cmp(out / f, scored.out / f, shallow=False)]
    assert not differ, differ[:5]
    summary = json.loads((out / "summary.json").read_text())
    for key, value in scored.summary.items():
        if key not in ("seconds", "timings", "out"):
            assert summary[key] == value, key
