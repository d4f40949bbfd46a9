"""Backends through Ibis: DuckDB (embedded default) or Spark over parquet, or the database itself.

A warehouse location is a directory of parquet files, a PostgreSQL URL or a Spark catalog
database (``spark://DB``); ``open_warehouse`` connects to the right one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import ibis

from features.config import WarehouseConfig
from features.panel import Warehouse
from features.sources import database
from features.sources.database import as_location, is_database_url, safe_url
from features.sources.files import INPUT_TABLES, TRUTH_TABLE, WarehouseError, has_table, table_glob
from features.spark_cluster import ClusterMisfit, check_fit, wait_for_executors

ENGINES = ("duckdb", "spark")


class EngineError(Exception):
    """The requested engine cannot be started (e.g. Spark without Java or the extra)."""


SHUFFLE_PARTITIONS = 200  # an upper bound: adaptive execution merges them to ~64 MB each
SPARK_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # the (customer, month) panel of 1M customers is 24M wide rows: 8 shuffle partitions made
    # 3M-row sorts per task; many partitions, merged by adaptive execution where small
    "spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS),
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": "64m",
    # broadcast only small tables (org, products, the months): never a customer-sized one
    "spark.sql.autoBroadcastJoinThreshold": "10m",
    "spark.sql.adaptive.autoBroadcastJoinThreshold": "10m",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # pandas UDF batches of at most this many rows (scoring and explaining in the workers)
    "spark.sql.execution.arrow.maxRecordsPerBatch": "20000",
}


def spark_session(settings: WarehouseConfig = WarehouseConfig()):  # noqa: B008 - frozen
    """The Spark session (created once per process) at ``settings.spark_master``: the settings
    above, ``settings.spark_memory`` for the driver heap (in local mode the driver is also the
    executor) and each executor's, ``settings.spark_cores`` cores per executor.

    On a cluster the request is checked against what the master offers (``features.
    spark_cluster``): an executor no worker can hold, or none registering within
    ``settings.spark_executor_wait`` seconds, is an :class:`EngineError` naming the memory and
    cores asked and offered — never a silent wait."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError(
            "the Spark engine needs the 'spark' extra: pip install -e '.[spark]'"
        ) from exc
    spark_master, local = settings.spark_master, settings.spark_master.startswith("local")
    try:
        if spark_master.startswith("spark://"):  # before a JVM starts: fails in milliseconds
            check_fit(settings)
        session = _spark_builder(SparkSession, settings).getOrCreate()
    except ClusterMisfit as exc:
        raise EngineError(str(exc)) from exc
    except Exception as exc:  # no Java, a master that does not answer, …
        raise EngineError(f"Spark did not start at {spark_master}: {_first_line(exc)}") from exc
    session.sparkContext.setLogLevel("ERROR")
    if not local and not _dynamic_allocation(session):
        try:
            wait_for_executors(session, settings)
        except ClusterMisfit as exc:
            raise EngineError(str(exc)) from exc
    return session


def _spark_builder(session_class, settings: WarehouseConfig):
    """A session builder with retain's settings, heap and cores."""
    spark_master, memory = settings.spark_master, settings.spark_memory
    # the executors' Python workers run this interpreter's path unless told otherwise (the
    # same venv on every node; PySpark's own default is whatever `python3` is there)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = session_class.builder.master(spark_master).appName("retain")
    if spark_master.startswith("local"):  # local mode talks to itself over loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    else:  # a cluster: the executors get the heap; the driver only plans and assembles
        builder = builder.config("spark.executor.memory", memory)
        if settings.spark_cores is not None:
            builder = builder.config("spark.executor.cores", str(settings.spark_cores))
    for key, value in SPARK_SETTINGS.items():
        builder = builder.config(key, value)
    return builder.config("spark.driver.memory", memory)


def _dynamic_allocation(session) -> bool:
    """Dynamic allocation may start with no executor until work arrives: nothing to wait for."""
    conf = session.sparkContext.getConf()
    return conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"


def duckdb_connection():
    """An embedded DuckDB connection that draws no progress bars (the CLI shows its own)."""
    con = ibis.duckdb.connect()
    try:
        con.raw_sql("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:  # in Jupyter without ipywidgets: already off
        pass
    return con


def connect(settings: WarehouseConfig = WarehouseConfig()):  # noqa: B008 - frozen
    """An Ibis connection to ``settings.engine``."""
    if settings.engine == "duckdb":
        return duckdb_connection()
    if settings.engine == "spark":
        return ibis.pyspark.connect(spark_session(settings))
    raise EngineError(f"unknown engine {settings.engine!r}; choose one of {', '.join(ENGINES)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_warehouse(
    location: str | Path,
    settings: WarehouseConfig = WarehouseConfig(),  # noqa: B008 - frozen, one shared default
) -> tuple[object, Warehouse]:
    """Connect to where ``location`` is computed and return ``(connection, Warehouse)``.

    ``location`` is a directory of parquet files (read by ``settings.engine``: DuckDB or
    Spark), a PostgreSQL URL (``postgres://user@host:port/db``; the connection is the database
    itself, so features are computed in PostgreSQL), or ``spark://DATABASE``, a database of the
    Spark catalog (with ``engine="spark"``).
    """
    location, engine = as_location(location), settings.engine
    if is_database_url(location):
        if engine != "duckdb":
            raise EngineError(
                f"{safe_url(location)} is computed in PostgreSQL itself; drop --engine {engine}"
            )
        con = database.connect(location)
    else:
        if spark_database(location) is not None and engine != "spark":
            raise EngineError(f"{location} is a Spark catalog database: use --engine spark")
        con = connect(settings)
    return con, load_warehouse(con, location)


def load_warehouse(con, warehouse: str | Path) -> Warehouse:
    """The warehouse's tables on ``con``; the truth table when present.

    A directory's parquet files are registered on ``con`` (DuckDB or Spark); a PostgreSQL URL's
    tables are read where they are (``con`` is then that database's backend); ``spark://DB``
    takes the tables of database ``DB`` in the Spark catalog.
    """
    location = as_location(warehouse)
    if is_database_url(location) or spark_database(location) is not None:
        catalog_database = spark_database(location)
        present = set(con.list_tables(database=catalog_database))
        missing = [t for t in INPUT_TABLES if t not in present]
        if missing:
            raise WarehouseError(f"{safe_url(location)} has no table(s): {', '.join(missing)}")
        names = [*INPUT_TABLES, *([TRUTH_TABLE] if TRUTH_TABLE in present else [])]
        return Warehouse(**{t: con.table(t, database=catalog_database) for t in names})
    missing = [t for t in INPUT_TABLES if not has_table(location, t)]
    if missing:
        raise WarehouseError(f"{location} has no table(s): {', '.join(missing)}")
    tables = {t: con.read_parquet(table_glob(location, t), table_name=t) for t in INPUT_TABLES}
    if has_table(location, TRUTH_TABLE):
        tables[TRUTH_TABLE] = con.read_parquet(
            table_glob(location, TRUTH_TABLE), table_name=TRUTH_TABLE
        )
    return Warehouse(**tables)


def spark_database(location: str | Path) -> str | None:
    """``DB`` for a ``spark://DB`` location, else None."""
    text = str(as_location(location))
    return text.removeprefix("spark://") if text.startswith("spark://") else None
