"""Validation on Spark: a warehouse directory read by Spark, and a database of the Spark
catalog, report what DuckDB reports."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from test_schema import FAULTS, Bank

from features.config import WarehouseConfig
from features.engine import EngineError, spark_session
from features.schema import Violation, validate_warehouse
from features.sources.files import table_glob
from tests import retain_process

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17")

SPARK = WarehouseConfig(engine="spark", spark_master="local[2]", spark_memory="1g")


def _summary(violations) -> set[tuple[str, str, str, int]]:
    return {(v.table, v.column, v.rule, v.count) for v in violations}


def test_spark_reports_every_fault_as_duckdb_does(tmp_path):
    bank = Bank()
    for fault, _ in FAULTS.values():
        fault(bank)
    warehouse = bank.write(tmp_path / "bank")

    on_duckdb = validate_warehouse(warehouse)

    assert validate_warehouse(warehouse, SPARK) == on_duckdb  # examples included
    assert _summary(on_duckdb) == {expected for _, expected in FAULTS.values()}


def test_a_spark_catalog_database_is_validated_on_spark(tmp_path):
    faults = ["missing column", "duplicate customer", "negative balance", "timestamp after as_of"]
    bank = Bank()
    for name in faults:
        FAULTS[name][0](bank)
    warehouse = bank.write(tmp_path / "bank")
    spark = spark_session(SPARK)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS faulty LOCATION '{tmp_path / 'catalog'}'")
    for table in bank.rows:
        spark.sql(
            f"CREATE OR REPLACE VIEW faulty.{table} AS "
            f"SELECT * FROM parquet.`{table_glob(warehouse, table)}`"
        )

    found = validate_warehouse("spark://faulty", SPARK)

    assert _summary(found) == {FAULTS[name][1] for name in faults}
    (missing,) = [v for v in found if v.rule == "column present"]
    assert missing.examples == ["table rms"]  # a table of the catalog, not a file
    assert [v for v in found if v != missing] == [
        v for v in validate_warehouse(warehouse) if v.rule != "column present"
    ]
    with pytest.raises(EngineError, match="use --engine spark"):
        validate_warehouse("spark://faulty")


def test_retain_validate_runs_on_the_engine_it_is_given(tmp_path):
    faults = ["duplicate customer", "negative balance"]
    bank = Bank()
    for name in faults:
        FAULTS[name][0](bank)
    warehouse = bank.write(tmp_path / "bank")
    report = tmp_path / "violations.json"
    spark = ["--engine", "spark", "--spark-master", "local[1]", "--spark-memory", "1g"]

    result = _retain("validate", "--warehouse", str(warehouse), *spark, "--json", str(report))

    assert result.returncode == 1, result.stderr[-2000:]
    found = [Violation(**v) for v in json.loads(report.read_text())["violations"]]
    assert found == validate_warehouse(warehouse)
    assert _summary(found) == {FAULTS[name][1] for name in faults}
    catalog = _retain("validate", "--warehouse", "spark://faulty", "--engine", "duckdb")
    assert catalog.returncode == 2
    assert "spark://faulty is a Spark catalog database: use --engine spark" in catalog.stderr


def _retain(*args: str) -> subprocess.CompletedProcess:
    return retain_process.run(list(args), timeout=300)
