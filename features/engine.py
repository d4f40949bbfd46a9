"""Backends: DuckDB (embedded default) or Spark (local or a cluster), both through Ibis."""

from __future__ import annotations

import os
from pathlib import Path

import ibis

from features.panel import Warehouse
from features.sources.files import INPUT_TABLES, TRUTH_TABLE, WarehouseError, has_table, table_glob

ENGINES = ("duckdb", "spark")


class EngineError(Exception):
    """The requested engine cannot be started (e.g. Spark without Java or the extra)."""


def connect(engine: str = "duckdb", spark_master: str = "local[2]"):
    if engine == "duckdb":
        return ibis.duckdb.connect()
    if engine == "spark":
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise EngineError(
                "the Spark engine needs the 'spark' extra: pip install -e '.[spark]'"
            ) from exc
        # local mode talks to itself over loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            SparkSession.builder.master(spark_master)
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .appName("retain-features")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", "4g")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        return ibis.pyspark.connect(session)
    raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def load_warehouse(con, warehouse: Path) -> Warehouse:
    """Register the warehouse's parquet tables on ``con``; the truth table when present."""
    missing = [t for t in INPUT_TABLES if not has_table(warehouse, t)]
    if missing:
        raise WarehouseError(f"{warehouse} has no table(s): {', '.join(missing)}")
    tables = {t: con.read_parquet(table_glob(warehouse, t), table_name=t) for t in INPUT_TABLES}
    if has_table(warehouse, TRUTH_TABLE):
        tables[TRUTH_TABLE] = con.read_parquet(
            table_glob(warehouse, TRUTH_TABLE), table_name=TRUTH_TABLE
        )
    return Warehouse(**tables)
