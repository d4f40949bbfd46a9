"""`retain score` in batches of customers gives the month it gives in one batch: the demo
month (the `scored` session fixture, one batch of ~5k customers) scored again 500 customers at
a time — scores, reasons, offers, assignment, lists, files and summary equal. The batched run
also writes its list files by two processes (``serving.sheets_split``, forced on the demo's
few lists): every CSV and every workbook part equal those one process wrote."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
import zipfile

import pandas as pd
import pyarrow.parquet as pq
import pytest

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
import serving.sheets_split
serving.sheets_split.SPLIT_LISTS = 2  # the demo's lists split between two processes
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
    books = sorted(p.relative_to(out) for p in (out / "lists").rglob("*.xlsx"))
    assert len(books) == len(files) and books == sorted(
        p.relative_to(scored.out) for p in (scored.out / "lists").rglob("*.xlsx")
    )
    differ = [f for f in books if workbook_parts(out / f) != workbook_parts(scored.out / f)]
    assert not differ, differ[:5]
    summary = json.loads((out / "summary.json").read_text())
    for key, value in scored.summary.items():
        if key not in ("seconds", "timings", "out"):
            assert summary[key] == value, key


def workbook_parts(path) -> dict[str, bytes]:
    """A workbook's parts by name (the zip's own timestamps aside)."""
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist()}


def test_a_failing_second_writer_fails_the_files_with_its_exit_code(scored, tmp_path, monkeypatch):
    import serving.sheets_split as split
    from features.config import BankConfig
    from features.products import read_products_metadata
    from serving.batch import _write_list_files

    config = BankConfig().with_products(read_products_metadata(scored.out / "features.parquet"))
    scores = pd.read_parquet(scored.out / "scores.parquet")
    lists, growth = (pd.read_parquet(scored.out / f"{n}.parquet") for n in ("lists", "growth"))
    monkeypatch.setattr(split, "SPLIT_LISTS", 2)
    monkeypatch.setattr(split.sys, "executable", "/bin/false")  # the child exits 1 at once
    with pytest.raises(RuntimeError, match=r"in a second process failed \(exit code 1\)"):
        _write_list_files(tmp_path / "lists", scores, lists, growth, "en", config, tmp_path)
    # the parent's half was written all the same: the step fails, its staging is discarded
    assert list((tmp_path / "lists" / "en").glob("*.csv"))


def test_explaining_from_the_listing_floor_keeps_every_listed_customers_reasons(scored):
    """``[lists] explain_above = min_risk`` (docs/operating.md: 18% off the 1M run) explains
    fewer customers, each with the reasons it had, and every customer a retention list holds
    (treated, explore, already leaving) among them — so the lists and their files stay the
    same."""
    import numpy as np

    from features.config import BankConfig
    from serving.champions import load_champions
    from serving.score import explain_churn, score_frame
    from tests.monitoring.conftest import demo_store

    policy = BankConfig().lists
    features = pd.read_parquet(scored.out / "features.parquet")
    with demo_store((scored.bank, scored.store, scored.env)):
        models = load_champions()
    scores = score_frame(models, features, policy.risk_bands)
    everyone = explain_churn(models, features, scores, 0.0)
    floor = explain_churn(models, features, scores, policy.min_risk)
    assert 0 < len(floor.rows) < 0.8 * len(everyone.rows)
    at = np.searchsorted(everyone.rows, floor.rows)
    assert (everyone.rows[at] == floor.rows).all()
    np.testing.assert_array_equal(everyone.feature[at], floor.feature)
    np.testing.assert_allclose(everyone.contribution[at], floor.contribution)
    listed = pd.read_parquet(scored.out / "lists.parquet")["customer_id"]
    positions = np.flatnonzero(features["customer_id"].isin(listed).to_numpy())
    assert len(positions) == listed.nunique() > 50
    assert np.isin(positions, floor.rows).all()


def test_work_ahead_keeps_the_order_runs_in_a_thread_and_surfaces_errors():
    import threading

    from features.ahead import ahead

    seen = []

    def work(item):
        seen.append(threading.current_thread().name)
        return item * 10

    assert list(ahead(iter(range(5)), work)) == [(i, i * 10) for i in range(5)]
    assert all(name.startswith("retain-ahead") for name in seen)

    def broken(item):
        if item == 2:
            raise ValueError("batch 2 cannot be scored")
        return item

    results = ahead(iter(range(5)), broken)
    assert [next(results), next(results)] == [(0, 0), (1, 1)]
    with pytest.raises(ValueError, match="batch 2"):
        next(results)

    def items():
        yield 1
        raise OSError("the features file went away")

    with pytest.raises(OSError, match="went away"):
        list(ahead(items(), work))
