"""The synthetic bank: a complete warehouse (docs/design.md §4) plus a `truth` table, per seed.

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
from features.catalog import DRIVERS, NO_DRIVER
from features.config import TierLadder
from features.sources.files import CUSTOMER_TABLES, LIST_ASSIGNMENTS, META_FILE, TRUTH_TABLE
from features.targets import CHURN, RESPONSE_TYPE
from synthetic.campaign import GROUPS, RESPONSE_TYPES, BankCampaign, global_ranks
from synthetic.config import SynthConfig
from synthetic.customers import draw_customers
from synthetic.dynamics import Shift, simulate
from synthetic.events import (
    Calendar,
    assignment_rows,
    balances_rows,
    campaign_interactions,
    complaints_rows,
    interactions_rows,
    transactions_table,
)
from synthetic.org import build_org
from synthetic.products import Catalogue
from synthetic.truth import HORIZON, truth_rows

GENERATOR_VERSION = "3"  # 3: customers live from their open date on
CHUNK_SIZE = 25_000
ID_BLOCK = 10**10  # event ids of chunk k start at k * ID_BLOCK
REGIME_ID_OFFSET = ID_BLOCK // 2  # events from a regime month on (see _Chunk.with_regime)
CAMPAIGN_ID_OFFSET = 3 * ID_BLOCK // 4  # a campaign's calls (interactions)
CHUNKED_TABLES = (*CUSTOMER_TABLES, TRUTH_TABLE)  # written per chunk of customers
# ids="string": column → (prefix, digits); zero padding keeps the integer order
STRING_IDS = {
    "customer_id": ("C", 10),
    "txn_id": ("T", 15),
    "interaction_id": ("I", 15),
    "complaint_id": ("K", 15),
}

DATE_COLUMNS = frozenset(
    {
        "birth_date",
        "open_date",
        "valid_from",
        "valid_to",
        "month",
        "maturity_date",
        "exit_month",
        "cutoff",
    }
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


class _Chunk:
    """One chunk of customers turned into its tables, with or without a regime change, with
    or without a campaign (``campaign``: the bank's :class:`BankCampaign`)."""

    def __init__(self, k, cust, config: SynthConfig, catalogue, org, ladder, campaign=None):
        self.k, self.cust, self.months, self.catalogue = k, cust, config.month_ends, catalogue
        self.cal = Calendar(self.months, cust)
        self.hidden_sigma, self.org, self.ladder = config.hidden_sigma, org, ladder
        self.other_bank_factor = _other_bank_factor(config)
        self.rm_ids = org.rms["rm_id"].to_numpy(dtype=object)
        self.campaign: BankCampaign | None = campaign
        self.rank_keys: dict[str, np.ndarray] | None = None  # list_assignments' ranking keys
        self.calls = 0  # the campaign's reached calls

    def frames(self, rng, shift: Shift | None = None, replay=None) -> tuple[dict, object]:
        """The chunk's tables and simulation (under ``shift``, a regime change, when given).
        Each stage starts from ``replay[stage]`` when given (a regime's second pass); the
        states each stage started from are kept in ``self.states``."""
        self.states = {}

        def start(stage: str) -> None:
            if replay is not None:
                rng.bit_generator.state = replay[stage]
            self.states[stage] = rng.bit_generator.state

        cust, cal, catalogue, rm_ids = self.cust, self.cal, self.catalogue, self.rm_ids
        first_id = self.k * ID_BLOCK
        call = self._chunk_campaign()
        start("simulate")
        rms_by_outlet = self.org.rms_by_outlet
        sim = simulate(
            rng, cust, len(self.months), rms_by_outlet, catalogue, shift=shift, campaign=call
        )
        frames = {"customers": cust.table}
        start("rm_assignments")
        frames["rm_assignments"] = assignment_rows(rng, cust, sim.months, cal, rm_ids)
        start("balances")
        frames["balances"] = balances_rows(rng, cust, sim.months, cal, catalogue)
        start("transactions")
        frames["transactions"] = transactions_table(
            rng, cust, sim.months, cal, first_id, self.other_bank_factor
        )
        start("interactions")
        frames["interactions"] = interactions_rows(rng, cust, sim.months, cal, rm_ids, first_id)
        start("complaints")
        frames["complaints"] = complaints_rows(rng, cust, sim.months, cal, first_id)
        frames["truth"] = truth_rows(cust, sim, self.months, self.ladder, catalogue.codes, call)
        if call is not None:
            self._campaign_frames(frames, call)
        return frames, sim

    def _chunk_campaign(self):
        """The chunk's campaign, afresh from its own stream (so a regime's second pass draws
        the same), or None."""
        if self.campaign is None:
            return None
        maturing = self.catalogue.maturing
        return self.campaign.for_chunk(
            self.k, self.cust, len(self.months), maturing, self.hidden_sigma
        )

    def _campaign_frames(self, frames: dict, call) -> None:
        """The campaign's calls joined to ``interactions``, and its ``list_assignments``."""
        calls = campaign_interactions(
            call.rng, self.cust, call.contacts, self.cal, self.rm_ids,
            self.k * ID_BLOCK + CAMPAIGN_ID_OFFSET,
        )  # fmt: skip
        self.calls = sum(len(who) for _, who, _ in call.contacts)
        if calls is not None:
            both = pd.concat([frames["interactions"], calls], ignore_index=True)
            frames["interactions"] = both.sort_values(
                ["customer_id", "ts"], kind="stable", ignore_index=True
            )
        if self.campaign.months is not None:
            cutoffs = self.months.to_numpy().astype("datetime64[D]")
            frames[LIST_ASSIGNMENTS], self.rank_keys = call.assignment_frame(cutoffs)

    def with_regime(self, rng, shift: Shift) -> tuple[dict, object]:
        """Tables of the chunk under ``shift``, a regime change that alters the simulation.

        Customers' lives change from the regime month on, so the random streams of the later
        months differ from the unchanged bank's. To keep every row before the regime month
        identical, the chunk is generated twice: unchanged (to learn the stream's state at the
        start of each stage and the event ids before the regime), then with the regime, each
        stage restarted from the unchanged state. Events from the regime month on get ids from
        ``REGIME_ID_OFFSET`` within the chunk's block, so ids never collide. Twice the work,
        for such regime banks only.
        """
        unchanged, _ = self.frames(rng)
        replay = self.states
        frames, sim = self.frames(rng, shift, replay)
        regime_month = shift.month
        cutoff = self.cal.month_start[regime_month].astype("datetime64[s]")
        regime_first_id = self.k * ID_BLOCK + REGIME_ID_OFFSET
        for table, column in (
            ("transactions", "txn_id"),
            ("interactions", "interaction_id"),
            ("complaints", "complaint_id"),
        ):
            frames[table] = _keep_ids_before(
                unchanged[table], frames[table], column, cutoff, regime_first_id
            )
        return frames, sim


def _keep_ids_before(unchanged, shifted, column: str, cutoff, first_id: int):
    """``shifted`` with the ids of ``unchanged`` on its events before ``cutoff`` (the same
    events, in the same order) and fresh ids from ``first_id`` on the others."""
    as_arrow = isinstance(shifted, pa.Table)
    ts_before = np.asarray(unchanged["ts"]).astype("datetime64[s]") < cutoff
    ts_after = np.asarray(shifted["ts"]).astype("datetime64[s]") >= cutoff
    if ts_before.sum() != (~ts_after).sum():  # a broken invariant of the generator, not input
        raise RuntimeError(f"regime change: {column} rows before the regime month differ")
    ids = np.empty(len(ts_after), dtype=np.int64)
    ids[~ts_after] = np.asarray(unchanged[column])[ts_before]
    ids[ts_after] = first_id + np.arange(ts_after.sum(), dtype=np.int64)
    if as_arrow:
        return shifted.set_column(shifted.column_names.index(column), column, pa.array(ids))
    return shifted.assign(**{column: ids})


def write_bank(
    config: SynthConfig,
    out: Path,
    ladder: TierLadder = TierLadder(),  # noqa: B008 - frozen, so one shared default is safe
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict:
    """Generate the bank into ``out`` atomically; return the metadata written to ``_meta.json``.

    ``ladder`` is the tier ladder the truth's ``p_upgrade_3m`` climbs; ``on_chunk(done, total)``
    is called after each chunk of customers (for progress bars). With a campaign that has a
    history, ``list_assignments`` is written too (``synthetic.campaign``).
    """
    months = config.month_ends
    catalogue = Catalogue.of(config.products)
    string_ids = config.ids == "string"
    org = build_org(config.customers, np.random.default_rng([config.seed, 0]))
    campaign = BankCampaign.of(config, org)
    shift = _shift(config, catalogue)
    n_chunks = -(-config.customers // CHUNK_SIZE)
    tables = CHUNKED_TABLES
    if campaign is not None and campaign.months is not None:
        tables = (*CHUNKED_TABLES, LIST_ASSIGNMENTS)
    counts = dict.fromkeys(tables, 0)
    totals = _Totals(campaign is not None)
    rank_keys = []
    with atomic_dir(Path(out), holds=META_FILE) as staging:
        _write(org.org, staging / "org.parquet")
        _write(org.rms, staging / "rms.parquet")
        _write(products_table(config), staging / "products.parquet")
        for table in tables:
            (staging / table).mkdir()
        for k in range(n_chunks):
            rng = np.random.default_rng([config.seed, 1, k])
            first = k * CHUNK_SIZE
            size = min(CHUNK_SIZE, config.customers - first)
            cust = draw_customers(rng, first + 1, size, org, months, config.hidden_sigma)
            chunk = _Chunk(k, cust, config, catalogue, org, ladder, campaign)
            if shift is not None:
                frames, sim = chunk.with_regime(rng, shift)
            else:
                frames, sim = chunk.frames(rng)
            for table, frame in frames.items():
                _write(frame, staging / table / f"part-{k:05d}.parquet", string_ids)
                counts[table] += len(frame)
            if chunk.rank_keys is not None:
                rank_keys.append(chunk.rank_keys)
            totals.add(sim, frames, len(months), chunk.calls)
            del sim, frames, chunk
            if on_chunk:
                on_chunk(k + 1, n_chunks)
        if rank_keys:
            _rank_assignments(staging / LIST_ASSIGNMENTS, rank_keys)
        meta = _meta(config, ladder, org, counts, totals)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta


def _rank_assignments(folder: Path, keys: list[dict[str, np.ndarray]]) -> None:
    """Give every part of ``list_assignments`` its ``rank`` within the whole list."""
    for k, rank in enumerate(global_ranks(keys)):
        path = folder / f"part-{k:05d}.parquet"
        table = pq.read_table(path)
        _write(table.append_column("rank", pa.array(rank, pa.int64())), path)


class _Totals:
    """What the metadata sums over the chunks: the hidden term's variance, exits by driver,
    and a campaign's figures (groups, calls, response types and their effects)."""

    def __init__(self, campaign: bool) -> None:
        self.hidden = np.zeros(5)
        self.exits = dict.fromkeys([*DRIVERS, NO_DRIVER], 0)
        self.campaign = campaign
        self.groups = dict.fromkeys(GROUPS, 0)
        self.types = {name: np.zeros(3) for name in RESPONSE_TYPES}  # rows, Σ p, Σ p called
        self.calls = 0

    def add(self, sim, frames: dict, n_months: int, calls: int) -> None:
        self.hidden += sim.hidden_var_sums
        for name, exited in _exits_by_driver(sim, n_months).items():
            self.exits[name] += exited
        if not self.campaign:
            return
        truth = frames[TRUTH_TABLE]
        p, called = CHURN.truth_source(HORIZON), CHURN.truth_called_source(HORIZON)
        sums = truth.groupby(RESPONSE_TYPE)[[p, called]].agg(["count", "sum"])
        for name, row in sums.iterrows():
            self.types[name] += [row[(p, "count")], row[(p, "sum")], row[(called, "sum")]]
        if LIST_ASSIGNMENTS in frames:
            for group, count in frames[LIST_ASSIGNMENTS]["group"].value_counts().items():
                self.groups[group] += int(count)
        self.calls += calls

    def campaign_meta(self) -> dict:
        rows = sum(v[0] for v in self.types.values())
        types = {
            name: {
                "share": round(float(v[0] / rows), 4) if rows else 0.0,
                "mean_p_churn_3m": round(float(v[1] / v[0]), 5) if v[0] else None,
                "mean_tau_3m": round(float((v[1] - v[2]) / v[0]), 5) if v[0] else None,
            }
            for name, v in self.types.items()
        }
        return {"assignments": self.groups, "calls_reached": self.calls, "response_types": types}


def _other_bank_factor(config: SynthConfig) -> np.ndarray | None:
    """Per window month, what a regime change multiplies payments to other banks by."""
    if config.regime is None:
        return None
    months = np.arange(len(config.month_ends))
    return np.where(months >= config.regime_month, config.regime.outflow_factor, 1.0)


def _shift(config: SynthConfig, catalogue: Catalogue) -> Shift | None:
    """A regime change that changes customers' lives, not only what transactions show."""
    regime = config.regime
    if regime is None or not (regime.withdrawn or regime.outflow_start_factor != 1):
        return None
    return Shift(
        np.isin(catalogue.codes, regime.withdrawn),
        config.regime_month,
        regime.outflow_start_factor,
    )


def _exits_by_driver(sim, n_months: int) -> dict[str, int]:
    """Exits within the window, by the driver that decided them."""
    in_window = (sim.exit_month >= 0) & (sim.exit_month < n_months)
    exited = sim.exit_driver[in_window]
    codes = [*range(len(DRIVERS)), -1]  # -1: no driver
    return {
        name: int((exited == code).sum())
        for name, code in zip([*DRIVERS, NO_DRIVER], codes, strict=True)
    }


def _meta(config: SynthConfig, ladder: TierLadder, org, counts, totals: _Totals) -> dict:
    """The bank's ``_meta.json``: its configuration, size, the hidden term's share of the churn
    log-odds, the exits by driver and, with a campaign, its figures."""
    n, s1, s2, l1, l2 = totals.hidden
    # without a regime or a campaign the metadata is what it was before they existed
    absent = {name for name in ("regime", "campaign") if getattr(config, name) is None}
    meta = {
        "generator": "retain.synthetic",
        "generator_version": GENERATOR_VERSION,
        "config": config.model_dump(mode="json", exclude={"products"} | absent),
        "as_of": config.end.isoformat(),
        "months": [m.date().isoformat() for m in config.month_ends],
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
        "exits_by_driver": totals.exits,
        "products": [p.model_dump(mode="json") for p in config.products],
        "tiers": [t.model_dump(mode="json") for t in ladder.tiers],
    }
    if totals.campaign:
        meta["campaign"] = totals.campaign_meta()
    return meta
