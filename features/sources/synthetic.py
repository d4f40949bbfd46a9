"""The synthetic bank: a complete warehouse (DESIGN §4) plus a `truth` table, per seed.

Customers are generated and written in fixed-size chunks, each with its own random stream
derived from the seed, so memory stays flat at any size and the same seed and arguments give
byte-identical parquet files. See ``synth_dynamics`` for how churn and purchases are caused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.config import DEFAULT_PRODUCTS, TierLadder
from features.atomic import atomic_dir
from features.sources.files import META_FILE
from features.sources.synth_customers import draw_customers
from features.sources.synth_dynamics import DRIVERS, simulate
from features.sources.synth_events import (
    Calendar,
    assignment_rows,
    balances_rows,
    complaints_rows,
    interactions_rows,
    transactions_table,
)
from features.sources.synth_org import build_org
from features.sources.synth_truth import truth_rows

GENERATOR_VERSION = "1"
CHUNK_SIZE = 25_000
ID_BLOCK = 10**10  # event ids of chunk k start at k * ID_BLOCK
CHUNKED_TABLES = ("customers", "rm_assignments", "balances", "transactions", "interactions",
                  "complaints", "truth")  # fmt: skip


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. ``hidden_sigma`` is the s.d. of the per-customer hidden churn term."""

    customers: int = 20_000
    months: int = 24
    end: date = date(2024, 12, 31)
    seed: int = 0
    hidden_sigma: float = 0.25

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")
        if self.months < 4:
            raise ValueError(f"months must be at least 4 (3 months of history), got {self.months}")
        if pd.Timestamp(self.end) != pd.Timestamp(self.end) + pd.offsets.MonthEnd(0):
            raise ValueError(f"end must be a month-end date, got {self.end}")

    @property
    def month_ends(self) -> pd.DatetimeIndex:
        return pd.date_range(end=pd.Timestamp(self.end), periods=self.months, freq="ME")


DATE_COLUMNS = frozenset(
    {"birth_date", "open_date", "valid_from", "valid_to", "month", "maturity_date", "exit_month"}
)


def _write(table: pa.Table | pd.DataFrame, path: Path) -> None:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    for i, name in enumerate(table.column_names):
        if name in DATE_COLUMNS and table.schema.field(i).type != pa.date32():
            table = table.set_column(i, name, table.column(i).cast(pa.date32()))
    table = table.replace_schema_metadata(None)  # no pandas metadata: stable bytes, any reader
    pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)


def _products_table() -> pd.DataFrame:
    return pd.DataFrame([asdict(p) for p in DEFAULT_PRODUCTS])


def write_bank(
    config: SynthConfig, out: Path, on_chunk: Callable[[int, int], None] | None = None
) -> dict:
    """Generate the bank into ``out`` atomically; return the metadata written to ``_meta.json``.

    ``on_chunk(done, total)`` is called after each chunk of customers (for progress bars).
    """
    months = config.month_ends
    cal = Calendar(months)
    ladder = TierLadder()
    org = build_org(config.customers, np.random.default_rng([config.seed, 0]))
    rm_ids = org.rms["rm_id"].to_numpy(dtype=object)
    n_chunks = -(-config.customers // CHUNK_SIZE)
    counts = dict.fromkeys(CHUNKED_TABLES, 0)
    hidden = np.zeros(5)
    drivers = dict.fromkeys([*DRIVERS, "none"], 0)
    with atomic_dir(Path(out)) as staging:
        _write(org.org, staging / "org.parquet")
        _write(org.rms, staging / "rms.parquet")
        _write(_products_table(), staging / "products.parquet")
        for table in CHUNKED_TABLES:
            (staging / table).mkdir()
        for k in range(n_chunks):
            rng = np.random.default_rng([config.seed, 1, k])
            first = k * CHUNK_SIZE
            size = min(CHUNK_SIZE, config.customers - first)
            cust = draw_customers(rng, first + 1, size, org, months, config.hidden_sigma)
            sim = simulate(rng, cust, len(months), org.rms_by_outlet)
            frames = {
                "customers": cust.table,
                "rm_assignments": assignment_rows(rng, cust, sim.months, cal, rm_ids),
                "balances": balances_rows(rng, cust, sim.months, cal),
                "transactions": transactions_table(rng, cust, sim.months, cal, k * ID_BLOCK),
                "interactions": interactions_rows(rng, cust, sim.months, cal, rm_ids, k * ID_BLOCK),
                "complaints": complaints_rows(rng, cust, sim.months, cal, k * ID_BLOCK),
                "truth": truth_rows(cust, sim, months, ladder),
            }
            for table, frame in frames.items():
                _write(frame, staging / table / f"part-{k:05d}.parquet")
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
            "config": {**asdict(config), "end": config.end.isoformat()},
            "as_of": config.end.isoformat(),
            "months": [m.date().isoformat() for m in months],
            "rows": counts,
            "org": {
                "outlets": len(org.org),
                "rms": len(org.rms),
                "sub_branches": int(org.org["sub_branch_id"].nunique()),
                "branches": int(org.org["branch_id"].nunique()),
            },  # fmt: skip
            "hidden_share_of_logit_variance": round(
                float((s2 / n - (s1 / n) ** 2) / (l2 / n - (l1 / n) ** 2)), 4
            ),
            "exits_by_driver": drivers,
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta
