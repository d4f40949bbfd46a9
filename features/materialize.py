"""Run a feature build and write it atomically as one parquet file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from features.build import build_features, check_cutoffs, select_output
from features.catalog import CATALOG_VERSION, feature_names
from features.config import BankConfig
from features.engine import connect, load_warehouse
from features.sources.atomic import atomic_file


def write_features(
    warehouse: Path,
    cutoffs: list[date],
    out: Path,
    config: BankConfig,
    engine: str = "duckdb",
    spark_master: str = "local[2]",
    step: Callable[[str], None] = lambda _: None,
) -> dict:
    """Build features for ``cutoffs`` on ``engine`` and write ``out``; return a summary."""
    step(f"connecting to {engine}")
    con = connect(engine, spark_master)
    wh = load_warehouse(con, warehouse)
    check_cutoffs(wh, cutoffs)
    step("building features")
    expr = select_output(build_features(wh, cutoffs, config), feature_names(config.product_names))
    step("writing parquet")
    with atomic_file(Path(out)) as tmp:
        if engine == "duckdb":
            con.to_parquet(expr, tmp, compression="zstd")
        else:
            pq.write_table(expr.to_pyarrow(), tmp, compression="zstd")
    meta = pq.read_metadata(out)
    columns = [meta.schema.column(i).name for i in range(meta.num_columns)]
    return {
        "out": str(out),
        "engine": engine,
        "rows": meta.num_rows,
        "cutoffs": [c.isoformat() for c in cutoffs],
        "features": len(feature_names(config.product_names)),
        "labels": sorted(c for c in columns if c.startswith("label_")),
        "catalog_version": CATALOG_VERSION,
    }
