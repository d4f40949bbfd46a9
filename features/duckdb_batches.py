"""The feature build on DuckDB in customer batches: memory grows with the batch, not the bank.

For each batch (a range of customer ids, so the parquet reader skips the other customers' row
groups) the customer tables are views of the batch's rows, read from the files that may hold
them, the batch's monthly panel a view (one cutoff) or a table (several), and one query computes
every feature of the customers' own history, the RM on the cutoff day and the truth, sorted by
cutoff and customer. The panel's SQL and the query are compiled once and read whichever batch
the views show (compiling the panel took ~0.4 s of one Python thread a batch, with DuckDB idle:
~8 s of a 1M build's 20 batches, measured; some 80 s of a 10M build's 200, by the same rate).
At one cutoff two batches are built at once, each on a DuckDB connection of its own; the
query's rows stream into an Arrow IPC part in the scratch folder, one record batch per cutoff.

The features that compare customers (outlet share, pyramid) are then ranked on a narrow read
of every part, and the file is assembled cutoff by cutoff, part by part: the parts are already
in the file's order, so nothing wide is sorted across batches (that sort, spilling, was a third
of a 12-cutoff build), and the rows are encoded into parquet once.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from ibis import _

from features.ahead import ahead
from features.atomic import atomic_file
from features.build import (
    RANKING_COLUMNS,
    customer_context,
    customer_rows,
    output_columns,
    ranking,
    row_only_columns,
)
from features.catalog import feature_names
from features.config import BankConfig
from features.panel import Warehouse, build_panel
from features.sources.files import TRUTH_TABLE, FileIds

Files = dict[str, list[FileIds]]  # a customer table: its files, with the ids each holds

# what DuckDB may hold before it spills: 1M customers × 12 cutoffs peaked at 4.4 GB with 4GB
# and at 2.4 GB with 2GB, for about 8% more time (the same features, to the last bits of a sum)
DUCKDB_MEMORY_LIMIT = "2GB"
# the loaded batch: its panel, its truth at the cutoffs, and a view of each customer table
PANEL, TRUTH = "retain_batch_panel", "retain_batch_truth_at"
BATCH_VIEW = "retain_batch_{}"
FILES_VIEW = "retain_batch_files_{}"  # a customer table's files that may hold the batch
PARTS, RANKED = "retain_parts", "retain_ranked"
ROW_GROUP_ROWS = 128 * 1024  # rows per row group of the feature file (DuckDB wrote ~120k)
KEYS = ["cutoff", "customer_id"]
BATCH_WORKERS = 2  # batches built at once at one cutoff (2 cores)


@dataclass(frozen=True)
class Part:
    """One batch's rows in an Arrow IPC file: which record batches hold each cutoff."""

    path: Path
    cutoffs: dict[date, list[int]]


def build_in_batches(
    con,
    wh: Warehouse,
    cutoffs: list[date],
    config: BankConfig,
    out: Path,
    scratch: Path,
    batch_customers: int,
    step: Callable[[str], None],
    metadata: dict,
    months: tuple[date, date],
    files: Files | None = None,
) -> None:
    """Write the feature file ``out`` for ``cutoffs``, ``batch_customers`` at a time;
    ``scratch`` holds the parts and DuckDB's spill; ``months``: the warehouse's first and
    last (``check_cutoffs``); ``files``: the parquet files of each customer table with the
    ids they hold (``customer_files``), so that a batch opens only the files that may hold it
    (else it reads the warehouse's tables as they are)."""
    warehouse_views = _temp_views(con)  # what a worker's connection needs to read the bank
    con.raw_sql(f"SET temp_directory = {_text(scratch / 'spill')}")
    con.raw_sql(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    con.raw_sql("SET preserve_insertion_order = false")
    names = feature_names(config.products)
    batches = customer_batches(wh, batch_customers)
    # the first batch shown on this connection, to compile the panel and the query once
    views = _BatchViews(con, wh, cutoffs, files)
    loaded = views.show(*batches[0])
    panel_sql = con.compile(build_panel(loaded, config, _rows_at(wh, cutoffs, config, months)))
    con.raw_sql(f"CREATE OR REPLACE TEMP VIEW {PANEL} AS {panel_sql}")
    query = _batch_query(con, loaded, cutoffs, config, months, names)
    # where the query reads the panel more than once at several cutoffs (two cutoffs: the
    # windows and the cutoff rows), it is aggregated once, into a table; at 12 cutoffs the
    # query reads it once and it stays a view. At one cutoff it is read twice, all months for
    # the windows (as aggregates) and the cutoff month's rows, which DuckDB computes from the
    # inputs of that month alone: computing those twice costs less than storing the panel
    # (50,000 customers: 2.6 s against 2.9 s a batch, and 840 MB against 1.4 GB for a 1M build)
    if query.count(_name(PANEL)) > 1 and len(cutoffs) > 1:
        panel = [f"DROP TABLE IF EXISTS {PANEL}", f"CREATE TEMP TABLE {PANEL} AS {panel_sql}"]
    else:
        panel = [f"CREATE OR REPLACE TEMP VIEW {PANEL} AS {panel_sql}"]
    # two batches at once at one cutoff; at 12, two batches' windows went past DuckDB's
    # memory limit and spilled (1M × 12 cutoffs: 186–196 s against 168–174 s, 2.7 GB)
    workers = BATCH_WORKERS if len(cutoffs) == 1 else 1
    parts = _write_parts(
        con,
        warehouse_views,
        batches,
        lambda first, last: [*views.statements(first, last), *panel],
        query,
        scratch,
        workers,
        step,
    )
    step("outlet shares, pyramid")
    _rank(con, parts)
    step("writing parquet")
    _assemble(con, parts, out, metadata, names)


def customer_batches(wh: Warehouse, batch_customers: int) -> list[tuple]:
    """(first id, last id) of each batch of about ``batch_customers`` customers."""
    ids = np.sort(wh.customers.customer_id.to_pyarrow().to_numpy(zero_copy_only=False))
    batches = np.array_split(ids, max(1, math.ceil(len(ids) / batch_customers)))
    return [(_plain(batch[0]), _plain(batch[-1])) for batch in batches if len(batch)]


def _rows_at(wh, cutoffs, config, months) -> tuple[list[int], frozenset[str]] | None:
    """At one cutoff, what is read at the cutoff row only (the balance of each product, what
    matures…) is aggregated over that month's balances alone (``build_panel``): a third less
    work for the panel. At many cutoffs a second aggregate over half the months costs more
    than it saves."""
    if len(cutoffs) > 1:
        return None
    return _month_numbers(cutoffs), row_only_columns(wh, cutoffs, config, months[1])


class _BatchViews:
    """The views that show one batch of customers, as SQL any connection of the database can
    run: each customer table's files that may hold the batch (``FILES_VIEW``), its rows of
    the batch (``BATCH_VIEW``, a filter on the id range, quick to compile), the truth at the
    cutoffs (``TRUTH``). The panel and the query read these names, whichever batch they show."""

    def __init__(self, con, wh: Warehouse, cutoffs: list[date], files: Files | None) -> None:
        self.con, self.files, self.wh = con, files or {}, wh
        if self.files:  # the batch views read the files views, whichever files they show
            for name, candidates in self.files.items():
                con.raw_sql(self._files_view(name, [f.path for f in candidates[:1]]))
            files_views = {name: con.table(FILES_VIEW.format(name)) for name in self.files}
            self.wh = replace(wh, **files_views)
        self.truth_sql = None
        if wh.truth is not None:  # the batch's truth at the cutoffs
            truth = ibis.table(wh.truth.schema(), name=BATCH_VIEW.format(TRUTH_TABLE))
            self.truth_sql = con.compile(truth.filter(truth.month.isin(cutoffs)))

    def statements(self, first_id, last_id) -> list[str]:
        """The SQL that points the views at the customers ``first_id``…``last_id``."""
        statements = []
        for name, candidates in self.files.items():
            chosen = [f.path for f in candidates if f.may_hold(first_id, last_id)]
            # one file when none may: the batch's filter finds no row in it
            statements.append(self._files_view(name, chosen or [candidates[0].path]))
        for name, table in self.wh.batch(first_id, last_id).customer_tables().items():
            view = BATCH_VIEW.format(name)
            statements.append(f"CREATE OR REPLACE TEMP VIEW {view} AS {self.con.compile(table)}")
        if self.truth_sql is not None:
            statements.append(f"CREATE OR REPLACE TEMP VIEW {TRUTH} AS {self.truth_sql}")
        return statements

    def show(self, first_id, last_id) -> Warehouse:
        """The batch's views on this connection; the warehouse that reads them (the same
        whichever batch they show)."""
        for sql in self.statements(first_id, last_id):
            self.con.raw_sql(sql)
        tables = {
            name: self.con.table(BATCH_VIEW.format(name)) for name in self.wh.customer_tables()
        }
        return replace(self.wh, **tables)

    @staticmethod
    def _files_view(name: str, paths: list[Path]) -> str:
        listed = ", ".join(_text(p) for p in paths)
        return (
            f"CREATE OR REPLACE TEMP VIEW {FILES_VIEW.format(name)} AS "
            f"SELECT * FROM read_parquet([{listed}])"
        )


def _batch_query(con, loaded: Warehouse, cutoffs, config, months, names: list[str]) -> str:
    """SQL for the loaded batch's rows (``loaded``: the warehouse of the batch views): the
    file's columns but the ranking's, sorted."""
    first_month, last_month = months
    rows = customer_rows(loaded, cutoffs, config, last_month, True, first_month, con.table(PANEL))
    if loaded.truth is not None:
        loaded = replace(loaded, truth=con.table(TRUTH))
    rows = customer_context(rows, loaded)
    columns = [c for c in output_columns(rows.columns, names) if c not in RANKING_COLUMNS]
    rows = rows.select(*columns).mutate(cutoff=_.cutoff.cast("date"))
    return _as_written(con, con.compile(rows)) + " ORDER BY cutoff, customer_id"


def _as_written(con, sql: str) -> str:
    """``sql`` with its columns in the types DuckDB's parquet writer gives them: it writes a
    HUGEINT (DuckDB's sum of BIGINTs, e.g. ``products_held``) as a DOUBLE, so the file has
    always held those columns as doubles, and still does."""
    described = con.con.sql(f"DESCRIBE {sql}").fetchall()
    columns = [
        f"CAST({_name(n)} AS DOUBLE) AS {_name(n)}" if kind == "HUGEINT" else _name(n)
        for n, kind, *_ in described
    ]
    return f"SELECT {', '.join(columns)} FROM ({sql})"


def _write_parts(
    con,
    warehouse_views: list[str],
    batches: list[tuple],
    statements: Callable[[object, object], list[str]],
    query: str,
    scratch: Path,
    workers: int,
    step: Callable[[str], None],
) -> list[Part]:
    """Each batch's part, ``workers`` batches at a time, each on a DuckDB connection
    of its own to the same database (its own temporary views, the database's threads and
    memory limit): while one batch's query is in a step that one thread computes (a sort,
    the lags' window), the other batch's keeps the second core busy. The 1M build at one
    cutoff, three rounds: 53.6–60.4 s against 58.0–67.3 s one batch after another, peak RSS
    1.69–1.77 GB against 0.90–0.93 GB (docs/operating.md).

    ``statements`` (first id, last id): the SQL that shows a batch, made here a batch ahead
    of the workers while they compute; ``query``: the features of the batch shown."""
    local, opened = threading.local(), []

    def connection():
        if getattr(local, "con", None) is None:
            local.con = con.con.cursor()
            opened.append(local.con)
            for sql in warehouse_views:
                local.con.execute(sql)
        return local.con

    def write(k: int, statements: list[str]) -> Part:
        worker = connection()
        for sql in statements:
            worker.execute(sql)
        return _write_part(worker, query, scratch / f"part-{k:05d}.arrow")

    parts, running = [], deque()
    try:
        with ThreadPoolExecutor(workers) as pool:
            for k, (first_id, last_id) in enumerate(batches):
                step(f"customer batch {k + 1}/{len(batches)}")
                running.append(pool.submit(write, k, statements(first_id, last_id)))
                if len(running) > workers:
                    parts.append(running.popleft().result())
            parts += [future.result() for future in running]
    finally:
        for worker in opened:
            worker.close()
    return parts


def _temp_views(con) -> list[str]:
    """The statements that make this connection's temporary views (the warehouse's tables)
    on another connection of the database."""
    rows = con.con.sql(
        "SELECT sql FROM duckdb_views() WHERE temporary AND NOT internal ORDER BY view_oid"
    ).fetchall()
    return [sql for (sql,) in rows]


def _write_part(con, query: str, path: Path) -> Part:
    """Stream the batch's rows (``con``: the DuckDB connection showing it) into ``path``, a
    record batch per cutoff slice."""
    reader = con.sql(query).to_arrow_reader(ROW_GROUP_ROWS)
    cutoffs: dict[date, list[int]] = {}
    written = 0
    # lz4: a part is read back once, and lz4 decompresses ~6× faster than zstd
    options = ipc.IpcWriteOptions(compression="lz4")
    with (
        pa.OSFile(str(path), "wb") as sink,
        ipc.new_file(sink, reader.schema, options=options) as writer,
    ):
        for batch in reader:
            runs = pc.run_end_encode(batch.column("cutoff"))
            start = 0
            for cutoff, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
                writer.write_batch(batch.slice(start, end - start))
                cutoffs.setdefault(cutoff, []).append(written)
                start, written = end, written + 1
    return Part(path, cutoffs)


def _rank(con, parts: list[Part]) -> None:
    """The outlet share and pyramid level of every row of ``parts``, into ``RANKED``."""
    con.con.register(PARTS, pads.dataset([str(p.path) for p in parts], format="ipc"))
    try:
        expr = ranking(con.table(PARTS))
        con.raw_sql(f"CREATE OR REPLACE TEMP TABLE {RANKED} AS {con.compile(expr)}")
    finally:
        con.con.unregister(PARTS)


def _assemble(con, parts: list[Part], out: Path, metadata: dict, names: list[str]) -> None:
    """Write ``out``: each cutoff's rows, part by part, with their ranking columns."""
    # read, not memory-mapped: mapped pages of every part would count as the process's memory
    readers = [ipc.open_file(pa.OSFile(str(part.path))) for part in parts]
    ranks = _cutoff_ranks(con, None)
    schema = readers[0].schema
    for column in RANKING_COLUMNS:
        schema = schema.append(ranks.schema.field(column))
    schema = pa.schema([schema.field(c) for c in output_columns(schema.names, names)])
    schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    # dictionaries for ids, flags and counts only: money and ratios are nearly all distinct,
    # and trying a dictionary on them cost a third of the writing and made the file larger;
    # zstd at DuckDB's level (3) rather than pyarrow's (1): the file stays within 8% of DuckDB's
    dictionary = [f.name for f in schema if not pa.types.is_floating(f.type)]
    with (
        atomic_file(out) as tmp,
        pq.ParquetWriter(
            tmp, schema, compression="zstd", compression_level=3, use_dictionary=dictionary
        ) as writer,
    ):
        # the next row group is read and ranked in a thread while this one is encoded
        for rows, _ in ahead(_row_groups(con, parts, readers, schema), lambda _: None):
            writer.write_table(rows)


def _row_groups(con, parts: list[Part], readers: list, schema: pa.Schema) -> Iterator[pa.Table]:
    """The file's rows in row groups of about ``ROW_GROUP_ROWS``: each cutoff's rows, part by
    part, with their ranking columns."""
    for cutoff in sorted({c for part in parts for c in part.cutoffs}):
        ranks, done, pending = _cutoff_ranks(con, cutoff), 0, []
        for part, reader in zip(parts, readers, strict=True):
            for index in part.cutoffs.get(cutoff, []):
                rows = reader.get_batch(index)
                pending.append(_ranked(rows, ranks.slice(done, rows.num_rows), schema))
                done += rows.num_rows
                if sum(b.num_rows for b in pending) >= ROW_GROUP_ROWS:
                    yield pa.Table.from_batches(pending)
                    pending = []
        if pending:
            yield pa.Table.from_batches(pending)
        if done != ranks.num_rows:
            raise RuntimeError(
                f"cutoff {cutoff}: {done} rows in the parts, {ranks.num_rows} ranked"
            )


def _cutoff_ranks(con, cutoff: date | None) -> pa.Table:
    """The ranking columns at ``cutoff`` by customer (None: none, for the schema)."""
    where = f"cutoff = DATE '{cutoff.isoformat()}'" if cutoff is not None else "false"
    columns = ", ".join(_name(c) for c in ("customer_id", *RANKING_COLUMNS))
    return con.con.sql(
        f"SELECT {columns} FROM {RANKED} WHERE {where} ORDER BY customer_id"
    ).to_arrow_table()


def _ranked(rows: pa.RecordBatch, ranks: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """``rows`` with their ranking columns (``ranks``, the same customers in the same order)."""
    if not rows.column("customer_id").equals(ranks.column("customer_id").combine_chunks()):
        raise RuntimeError("a part's customers are not in the ranking's order")
    columns = {name: rows.column(name) for name in rows.schema.names}
    columns |= {name: ranks.column(name).combine_chunks() for name in RANKING_COLUMNS}
    return pa.RecordBatch.from_arrays([columns[n] for n in schema.names], schema=schema)


def _month_numbers(cutoffs: list[date]) -> list[int]:
    return [c.year * 12 + c.month - 1 for c in cutoffs]


def _name(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _text(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _plain(value):
    """A numpy scalar as a Python value (ids may be integers or strings)."""
    return value.item() if hasattr(value, "item") else value
