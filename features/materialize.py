"""Run a feature build and write it atomically as one parquet file.

On DuckDB, large banks are built in customer batches: each batch's per-customer rows go to a
parquet part in a scratch folder next to the output, then the cross-customer step (outlet
share, pyramid, RM, truth) runs over the parts. Memory then grows with the batch, not the
bank. The scratch folder (also DuckDB's spill folder) is removed whatever happens. Each batch
computes its windows only over the months they read (``customer_rows(..., trim=True)``).

On Spark, Spark writes the customer rows and then the finished, sorted table with its own
parquet writer into the scratch folder (storage the executors share with the driver); the
driver then streams those parts, row group by row group, into the one output file. Nothing is
collected: pulling 12M rows × ~120 columns through the driver (``to_pyarrow`` is ``toPandas``)
was the OutOfMemoryError at 1M customers.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.atomic import atomic_file
from features.build import (
    build_features,
    check_cutoffs,
    customer_rows,
    cutoff_rows,
    select_output,
)
from features.catalog import CATALOG_VERSION, feature_names
from features.config import BankConfig
from features.engine import open_warehouse
from features.panel import build_panel
from features.products import products_metadata, resolve_products
from features.sources.database import is_database_url
from features.targets import LABEL_PREFIX

BATCH_CUSTOMERS = 50_000
# what DuckDB may hold before it spills: 1M customers × 12 cutoffs peaked at 4.4 GB with 4GB
# and at 2.4 GB with 2GB, for about 8% more time (the same features, to the last bits of a sum)
DUCKDB_MEMORY_LIMIT = "2GB"
BATCH_PANEL = "retain_batch_panel"  # the DuckDB table holding the current batch's panel


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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if engine not in ("duckdb", "spark"):  # a database: one expression, no customer batches
        step("building features")
        expr = select_output(build_features(wh, cutoffs, config), names)
        table = expr.to_pyarrow()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        with atomic_file(out) as tmp:
            pq.write_table(table, tmp, compression="zstd")
    else:
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.scratch.", dir=out.parent))
        try:
            if engine == "spark":
                _build_on_spark(con, wh, cutoffs, config, out, scratch, step, metadata, months)
            else:
                _build_in_batches(
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


def _build_in_batches(
    con, wh, cutoffs, config, out: Path, scratch: Path, batch_customers, step, metadata, months
):
    first_month, last_month = months
    con.raw_sql(f"SET temp_directory = '{scratch / 'spill'}'")
    con.raw_sql(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    con.raw_sql("SET preserve_insertion_order = false")
    ids = np.sort(wh.customers.customer_id.to_pyarrow().to_numpy(zero_copy_only=False))
    batches = np.array_split(ids, max(1, math.ceil(len(ids) / batch_customers)))
    rows_sql = None
    for k, batch in enumerate(batches):
        step(f"customer batch {k + 1}/{len(batches)}")
        batch_wh = wh.batch(_plain(batch[0]), _plain(batch[-1]))
        # the batch's panel aggregated once into a table that every pass of windows reads
        con.raw_sql(
            f"CREATE OR REPLACE TEMP TABLE {BATCH_PANEL} AS "
            f"{con.compile(build_panel(batch_wh, config))}"
        )
        if rows_sql is None:  # one query for every batch: it reads whichever panel is there
            panel = con.table(BATCH_PANEL)
            part = customer_rows(wh, cutoffs, config, last_month, True, first_month, panel)
            rows_sql = con.compile(part)
        con.raw_sql(
            f"COPY ({rows_sql}) TO {_sql_text(scratch / f'part-{k:05d}.parquet')} (FORMAT parquet)"
        )
    con.raw_sql(f"DROP TABLE IF EXISTS {BATCH_PANEL}")
    step("outlet shares, pyramid, RMs")
    rows = con.read_parquet(str(scratch / "part-*.parquet"), table_name="customer_rows")
    expr = select_output(cutoff_rows(rows, wh), feature_names(config.products))
    step("writing parquet")
    with atomic_file(out) as tmp:
        con.to_parquet(expr, tmp, compression="zstd", kv_metadata=metadata)


def _sql_text(value) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


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


def _plain(value):
    """A numpy scalar as a Python value (ids may be integers or strings)."""
    return value.item() if hasattr(value, "item") else value
