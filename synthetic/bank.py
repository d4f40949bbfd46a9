"""The synthetic bank: a complete warehouse (DESIGN §4) plus a `truth` table, per seed.

Customers are generated and written in fixed-size chunks, each with its own random stream
derived from the seed, so memory stays flat at any size and the same seed and arguments give
byte-identical parquet files. See ``synthetic.dynamics`` for how churn and purchases are
caused, and ``synthetic.config`` for the catalogue and its behaviours.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.atomic import atomic_dir
from features.config import TierLadder
from features.sources.files import META_FILE
from synthetic.config import SynthConfig
from synthetic.customers import draw_customers
from synthetic.dynamics import DRIVERS, simulate
from synthetic.events import (
    Calendar,
    assignment_rows,
    balances_rows,
    complaints_rows,
    interactions_rows,
    transactions_table,
)
from synthetic.org import build_org
from synthetic.products import Catalogue
from synthetic.truth import truth_rows

GENERATOR_VERSION = "2"
CHUNK_SIZE = 25_000
ID_BLOCK = 10**10  # event ids of chunk k start at k * ID_BLOCK
CHUNKED_TABLES = (
    "customers",
    "rm_assignments",
    "balances",
    "transactions",
    "interactions",
    "complaints",
    "truth",
)
# ids="string": column → (prefix, digits); zero padding keeps the integer order
STRING_IDS = {
    "customer_id": ("C", 10),
    "txn_id": ("T", 15),
    "interaction_id": ("I", 15),
    "complaint_id": ("K", 15),
}

DATE_COLUMNS = frozenset(
    {"birth_date", "open_date", "valid_from", "valid_to", "month", "maturity_date", "exit_month"}
)


def _string_ids(column: pa.ChunkedArray, prefix: str, digits: int) -> pa.ChunkedArray:
    padded = pc.utf8_lpad(pc.cast(column, pa.string()), digits, "0")
    return pc.binary_join_element_wise(prefix, padded, "")


def _write(table: pa.Table | pd.DataFrame, path: Path, string_ids: bool = False) -> None:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    for i, name in enumerate(table.column_names):
        if name in DATE_COLUMNS and table.schema.field(i).type != pa.date32():
            table = table.set_column(i, name, table.column(i).cast(pa.date32()))
        if string_ids and name in STRING_IDS:
            table = table.set_column(i, name, _string_ids(table.column(i), *STRING_IDS[name]))
    table = table.replace_schema_metadata(None)  # no pandas metadata: stable bytes, any reader
    pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)


def products_table(config: SynthConfig) -> pa.Table:
    """The warehouse's ``products`` table: the catalogue without its behaviours."""
    products = config.products
    return pa.table(
        {
            "product": pa.array([p.product for p in products], pa.string()),
            "kind": pa.array([p.kind for p in products], pa.string()),
            "margin_rate": pa.array([p.margin_rate for p in products], pa.float64()),
            "fee_per_year": pa.array([p.fee_per_year for p in products], pa.float64()),
            "name_zh": pa.array([p.names.zh for p in products], pa.string()),
            "name_en": pa.array([p.names.en for p in products], pa.string()),
        }
    )


def write_bank(
    config: SynthConfig,
    out: Path,
    ladder: TierLadder = TierLadder(),  # noqa: B008 - frozen, so one shared default is safe
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict:
    """Generate the bank into ``out`` atomically; return the metadata written to ``_meta.json``.

    ``ladder`` is the tier ladder the truth's ``p_upgrade_3m`` climbs; ``on_chunk(done, total)``
    is called after each chunk of customers (for progress bars).
    """
    months = config.month_ends
    cal = Calendar(months)
    catalogue = Catalogue.of(config.products)
    string_ids = config.ids == "string"
    org = build_org(config.customers, np.random.default_rng([config.seed, 0]))
    rm_ids = org.rms["rm_id"].to_numpy(dtype=object)
    other_bank_factor = None
    if config.regime is not None:
        other_bank_factor = np.where(
            np.arange(len(months)) >= config.regime_month, config.regime.outflow_factor, 1.0
        )
    n_chunks = -(-config.customers // CHUNK_SIZE)
    counts = dict.fromkeys(CHUNKED_TABLES, 0)
    hidden = np.zeros(5)
    drivers = dict.fromkeys([*DRIVERS, "none"], 0)
    with atomic_dir(Path(out)) as staging:
        _write(org.org, staging / "org.parquet")
        _write(org.rms, staging / "rms.parquet")
        _write(products_table(config), staging / "products.parquet")
        for table in CHUNKED_TABLES:
            (staging / table).mkdir()
        for k in range(n_chunks):
            rng = np.random.default_rng([config.seed, 1, k])
            first = k * CHUNK_SIZE
            size = min(CHUNK_SIZE, config.customers - first)
            cust = draw_customers(rng, first + 1, size, org, months, config.hidden_sigma)
            sim = simulate(rng, cust, len(months), org.rms_by_outlet, catalogue)
            frames = {
                "customers": cust.table,
                "rm_assignments": assignment_rows(rng, cust, sim.months, cal, rm_ids),
                "balances": balances_rows(rng, cust, sim.months, cal, catalogue),
                "transactions": transactions_table(
                    rng, cust, sim.months, cal, k * ID_BLOCK, other_bank_factor
                ),
                "interactions": interactions_rows(rng, cust, sim.months, cal, rm_ids, k * ID_BLOCK),
                "complaints": complaints_rows(rng, cust, sim.months, cal, k * ID_BLOCK),
                "truth": truth_rows(cust, sim, months, ladder, catalogue.codes),
            }
            for table, frame in frames.items():
                _write(frame, staging / table / f"part-{k:05d}.parquet", string_ids)
                counts[table] += len(frame)
            hidden += sim.hidden_var_sums
            in_window = (sim.exit_month >= 0) & (sim.exit_month < len(months))
            exited = sim.exit_driver[in_window]
            for i, name in enumerate([*DRIVERS, "none"]):
                drivers[name] += int((exited == (i if i < len(DRIVERS) else -1)).sum())
            del sim, frames
            if on_chunk:
                on_chunk(k + 1, n_chunks)
        n, s1, s2, l1, l2 = hidden
        meta = {
            "generator": "retain.synthetic",
            "generator_version": GENERATOR_VERSION,
            # without a regime the metadata is what it was before regimes existed
            "config": config.model_dump(
                mode="json", exclude={"products"} | ({"regime"} if config.regime is None else set())
            ),
            "as_of": config.end.isoformat(),
            "months": [m.date().isoformat() for m in months],
            "rows": counts,
            "org": {
                "outlets": len(org.org),
                "rms": len(org.rms),
                "sub_branches": int(org.org["sub_branch_id"].nunique()),
                "branches": int(org.org["branch_id"].nunique()),
            },
            "hidden_share_of_logit_variance": round(
                float((s2 / n - (s1 / n) ** 2) / (l2 / n - (l1 / n) ** 2)), 4
            ),
            "exits_by_driver": drivers,
            "products": [p.model_dump(mode="json") for p in config.products],
            "tiers": [t.model_dump(mode="json") for t in ladder.tiers],
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta
