"""A customer batch reads the files that may hold its customers, not every file of the table."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import features.duckdb_batches as batches
from features.build import parse_cutoffs
from features.config import BankConfig
from features.materialize import write_features
from features.sources.files import CUSTOMER_TABLES, TRUTH_TABLE, FileIds, customer_files
from synthetic.bank import write_bank
from synthetic.config import SynthConfig

CUTOFFS = parse_cutoffs("2024-09-30")


def _split(bank: Path, out: Path) -> Path:
    """``bank`` with each customer table in four files: three by id range (thirds of the
    customers) and one of every 50th row of the whole table (it may hold anyone)."""
    shutil.copytree(bank, out)
    ids = pq.read_table(bank / "customers", columns=["customer_id"]).column(0)
    ordered = pc.sort_indices(ids)
    cuts = [ids[ordered[len(ids) * k // 3].as_py()].as_py() for k in (1, 2)]
    for table in (*CUSTOMER_TABLES, TRUTH_TABLE):
        rows = pq.read_table(bank / table)
        shutil.rmtree(out / table)
        (out / table).mkdir()
        spread = pa.array(np.arange(len(rows)) % 50 == 0)
        pq.write_table(rows.filter(spread), out / table / "part-spread.parquet")
        rest, ids_ = rows.filter(pc.invert(spread)), rows.filter(pc.invert(spread))["customer_id"]
        low = pc.less(ids_, cuts[0])
        high = pc.greater_equal(ids_, cuts[1])
        middle = pc.invert(pc.or_(low, high))
        for name, where in (("a", low), ("b", middle), ("c", high)):
            pq.write_table(rest.filter(where), out / table / f"part-{name}.parquet")
    return out


@pytest.fixture(scope="module", params=["integer", "string"])
def split_bank(request, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp(f"split-{request.param}")
    write_bank(SynthConfig(customers=1_500, months=24, seed=3, ids=request.param), root / "bank")
    return _split(root / "bank", root / "split")


def test_a_files_ids_come_from_its_footer(split_bank):
    found = {f.path.name: f for f in customer_files(split_bank, "transactions")}
    assert sorted(found) == [
        "part-a.parquet",
        "part-b.parquet",
        "part-c.parquet",
        "part-spread.parquet",
    ]
    for name, info in found.items():
        ids = pq.read_table(info.path, columns=["customer_id"]).column(0)
        assert (info.low, info.high) == (pc.min(ids).as_py(), pc.max(ids).as_py()), name
    a, c = found["part-a.parquet"], found["part-c.parquet"]
    assert a.high < c.low
    assert a.may_hold(a.low, a.low) and not a.may_hold(c.low, c.high)
    assert found["part-spread.parquet"].may_hold(c.low, c.high)


def test_a_file_that_records_no_ids_may_hold_anyone(tmp_path):
    path = tmp_path / "no_stats.parquet"
    pq.write_table(pa.table({"customer_id": [5, 6]}), path, write_statistics=False)
    (found,) = customer_files(tmp_path, "no_stats")
    assert found == FileIds(path) and found.may_hold(100, 200)
    assert FileIds(path, 1, 9).may_hold("a", "b")  # ids of another kind: cannot tell, read it


def _read_by(statements: list[str], table: str) -> set[str]:
    """The files a batch's statements have DuckDB read for ``table`` (its files view)."""
    (sql,) = [
        s
        for s in statements
        if s.startswith(f"CREATE OR REPLACE TEMP VIEW {batches.FILES_VIEW.format(table)} ")
    ]
    return {name for name in ("a", "b", "c", "spread") if f"part-{name}.parquet" in sql}


def test_batches_read_only_their_files_and_build_the_same_table(split_bank, tmp_path, monkeypatch):
    """Five batches over the split bank, each opening the files that may hold it, give the
    file of one batch over the bank as written; a batch at the low ids never opens the file of
    the high ones, nor one at the high ids the low ones'."""
    whole, batched = tmp_path / "whole.parquet", tmp_path / "batched.parquet"
    write_features(split_bank, CUTOFFS, whole, BankConfig(), batch_customers=10**9)
    read: list[set[str]] = []
    statements = batches._BatchViews.statements

    def spy(self, *args):
        made = statements(self, *args)
        read.append(_read_by(made, "transactions"))
        return made

    monkeypatch.setattr(batches._BatchViews, "statements", spy)
    write_features(split_bank, CUTOFFS, batched, BankConfig(), batch_customers=300)
    assert len(read) == 6  # the first batch twice: once to compile, once to build
    assert read[0] == {"a", "spread"} and read[-1] == {"c", "spread"}
    assert all("spread" in files and len(files) < 4 for files in read)
    pd.testing.assert_frame_equal(
        pd.read_parquet(batched), pd.read_parquet(whole), check_exact=False, rtol=1e-9
    )
    # footers without ids: every batch reads every file, and the file is the same
    with_all_files = tmp_path / "all.parquet"
    monkeypatch.setattr(batches._BatchViews, "statements", statements)
    monkeypatch.setattr(
        "features.materialize.customer_files",
        lambda warehouse, table: [FileIds(f.path) for f in customer_files(warehouse, table)],
    )
    write_features(split_bank, CUTOFFS, with_all_files, BankConfig(), batch_customers=300)
    pd.testing.assert_frame_equal(
        pd.read_parquet(batched), pd.read_parquet(with_all_files), check_exact=False, rtol=1e-9
    )
