"""Validation on Spark: a warehouse directory read by Spark, and a database of the Spark
catalog, report what DuckDB reports."""

from __future__ import annotations

import shutil

import pytest
from test_schema import FAULTS, Bank

from features.config import WarehouseConfig
from features.engine import EngineError, spark_session
from features.schema import validate_warehouse
from features.sources.files import table_glob

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
