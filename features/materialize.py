"""Run a feature build and write it atomically as one parquet file.

On DuckDB, banks are built in customer batches (``features.duckdb_batches``): each batch's rows
go to a part in a scratch folder next to the output, then the features that compare customers
(outlet share, pyramid) are ranked over the parts and the file assembled from them. Memory
then grows with the batch, not the bank. The scratch folder (also DuckDB's spill folder) is
removed whatever happens.

On Spark, Spark writes the customer rows and then the finished, sorted table with its own
parquet writer into the scratch folder (storage the executors share with the driver); the
driver then streams those parts, row group by row group, into the one output file. Nothing is
collected: pulling 12M rows × ~120 columns through the driver (``to_pyarrow`` is ``toPandas``)
was the OutOfMemoryError at 1M customers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.atomic import atomic_file, file_target, scratch_dir
from features.build import (
    build_features,
    check_cutoffs,
    customer_rows,
    cutoff_rows,
    select_output,
)
from features.catalog import CATALOG_VERSION, feature_names
from features.config import BankConfig
from features.duckdb_batches import build_in_batches
from features.engine import open_warehouse
from features.products import products_metadata, resolve_products
from features.sources.database import is_database_url
from features.sources.files import customer_files
from features.targets import LABEL_PREFIX

BATCH_CUSTOMERS = 50_000


def write_features(
    warehouse: Path | str,
    cutoffs: list[date],
    out: Path,
    config: BankConfig,
    step: Callable[[str], None] = lambda _: None,
    batch_customers: int = BATCH_CUSTOMERS,
) -> dict:
    """Build features for ``cutoffs`` and write ``out``; return a summary.

    ``warehouse`` is a directory of parquet files (read by ``config.warehouse.engine``:
    DuckDB or Spark, with its master and memory) or a ``postgres://`` URL, whose features are
    computed in PostgreSQL (the engine is then ``postgres``).
    """
    engine = config.warehouse.engine
    if is_database_url(warehouse) and engine == "duckdb":  # computed in the database itself
        engine = "postgres"
    step(f"connecting to {engine}")
    con, wh = open_warehouse(warehouse, config.warehouse)
    months = check_cutoffs(wh, cutoffs)
    config = resolve_products(wh.products, config)
    names = feature_names(config.products)
    metadata = products_metadata(config.products)
    out = file_target(out)
    if engine not in ("duckdb", "spark"):  # a database: one expression, no customer batches
        step("building features")
        expr = select_output(build_features(wh, cutoffs, config), names)
        table = expr.to_pyarrow()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        with atomic_file(out) as tmp:
            pq.write_table(table, tmp, compression="zstd")
    else:
        scratch = scratch_dir(out, f".{out.name}.scratch.")
        try:
            if engine == "spark":
                _build_on_spark(con, wh, cutoffs, config, out, scratch, step, metadata, months)
            else:
                build_in_batches(
                    con,
                    wh,
                    cutoffs,
                    config,
                    out,
                    scratch,
                    batch_customers,
                    step,
                    metadata,
                    months,
                    {t: customer_files(Path(warehouse), t) for t in wh.customer_tables()},
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    meta = pq.read_metadata(out)
    columns = [meta.schema.column(i).name for i in range(meta.num_columns)]
    return {
        "out": str(out),
        "engine": engine,
        "rows": meta.num_rows,
        "cutoffs": [c.isoformat() for c in cutoffs],
        "features": len(names),
        "labels": sorted(c for c in columns if c.startswith(LABEL_PREFIX)),
        "catalog_version": CATALOG_VERSION,
    }


def _build_on_spark(con, wh, cutoffs, config, out: Path, scratch: Path, step, metadata, months):
    """Two Spark jobs, each written by Spark's parquet writer into ``scratch``: the
    per-customer rows (the panel and its windows), then the cross-customer step over those
    parts, sorted by cutoff and customer. The driver concatenates the sorted parts' row groups
    into ``out``.

    Writing the customer rows first is what keeps the plan single: ``cutoff_rows`` joins the
    rows with a ranking of themselves, and as one Spark plan that computed the whole 24-month
    panel — every scan, aggregate and window — twice."""
    first_month, last_month = months
    step("customer rows on Spark")
    rows = customer_rows(wh, cutoffs, config, last_month, first_month=first_month)
    con.to_parquet_dir(rows, scratch / "rows")
    step("outlet shares, pyramid, RMs")
    rows = con.read_parquet(str(scratch / "rows"), table_name="customer_rows")
    expr = select_output(cutoff_rows(rows, wh), feature_names(config.products))
    con.to_parquet_dir(expr, scratch / "parts")
    step("writing parquet")
    parts = sorted((scratch / "parts").glob("part-*.parquet"))
    write_parts(parts, out, expr.schema().to_pyarrow(), metadata)


def write_parts(parts: list[Path], out: Path, schema: pa.Schema, metadata: dict) -> int:
    """Stream the row groups of ``parts`` (in order) into one zstd parquet file ``out``,
    atomically, cast to ``schema`` and carrying ``metadata``; the number of rows written."""
    schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    rows = 0
    with atomic_file(out) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for part in parts:
            source = pq.ParquetFile(part)
            for group in range(source.num_row_groups):
                table = source.read_row_group(group).select(schema.names)
                writer.write_table(table.cast(schema))
                rows += table.num_rows
    return rows
