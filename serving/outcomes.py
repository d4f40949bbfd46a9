"""Outcomes of contacts an RM made (docs/design.md §12): a small store, SQLite by default or
PostgreSQL.

One table, created on first use. The API and the RM page call the same two methods::

    store = OutcomeStore("data/outcomes.db")          # or "postgres://user@host:5432/db"
    outcome, created = store.record(request_id="crm-7781", customer_id=1042, rm_id="RM00028",
                                    channel="call", reached=True, result="stays",
                                    recorded_by="rm-RM00028", recorded_key=key.sha256)
    store.for_customer(1042)                           # newest first

``record`` is idempotent per (key, ``request_id``), the key by its identity (``recorded_key``:
the SHA-256 the keys file holds, never its name, which a later key could be given): a repeat
with the same content returns the stored outcome and ``created=False``; the same request id
with another customer or other content is an :class:`OutcomeConflict` (409).
:func:`export_to_warehouse` appends the outcomes not yet exported
as a parquet part of the warehouse's ``interactions`` table and marks them exported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from features.atomic import private_file

CHANNELS = ("call", "visit", "message", "event")  # the warehouse's interaction kinds
RESULTS = ("stays", "will_move_money", "not_interested", "complaint", "unreachable")
NOTE_CHARS, NEXT_STEP_CHARS = 500, 200  # the longest note and next step an outcome keeps
# exported interaction ids for an integer warehouse: from 2^62 on, a range a bank's own
# interaction ids (counted up from small numbers) never reach, so they cannot clash
EXPORT_ID_BASE = 2**62 + 1

_COLUMNS = (
    "outcome_id",
    "request_id",
    "customer_id",
    "customer_id_int",
    "rm_id",
    "channel",
    "reached",
    "result",
    "next_step",
    "note",
    "recorded_at",
    "recorded_by",
    "exported_at",
    "recorded_key",
)
# what a repeat must match to be the same outcome
_CONTENT = ("customer_id", "customer_id_int", "channel", "reached", "result", "next_step", "note")
_TABLE = """
CREATE TABLE IF NOT EXISTS outcomes (
    outcome_id {serial} PRIMARY KEY,
    request_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    customer_id_int BOOLEAN NOT NULL,
    rm_id TEXT,
    channel TEXT NOT NULL,
    reached BOOLEAN NOT NULL,
    result TEXT NOT NULL,
    next_step TEXT NOT NULL,
    note TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    exported_at TEXT,
    recorded_key TEXT
)"""
# a store made before outcomes were keyed by the key's identity gains the column; the index
# makes (key, request id) unique in old and new stores alike
_MIGRATE = "ALTER TABLE outcomes ADD COLUMN recorded_key TEXT"
_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS outcomes_by_key ON outcomes (recorded_key, request_id)"


class OutcomeError(ValueError):
    """An outcome or a store location that cannot be used; the message says why."""


class OutcomeConflict(OutcomeError):
    """A request id the key used before, for another customer or other content."""


@dataclass(frozen=True)
class Outcome:
    outcome_id: int
    request_id: str
    customer_id: int | str
    rm_id: str | None
    channel: str
    reached: bool
    result: str
    next_step: str
    note: str
    recorded_at: str
    recorded_by: str
    exported_at: str | None = None
    recorded_key: str | None = None

    def public(self) -> dict:
        """The outcome as the API answers it (without the bookkeeping: export, key hash)."""
        hidden = ("exported_at", "recorded_key")
        return {k: v for k, v in asdict(self).items() if k not in hidden}


class OutcomeStore:
    """Outcomes in SQLite (a file path, WAL mode) or PostgreSQL (a ``postgres://`` URL)."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self.postgres = self.location.startswith(("postgres://", "postgresql://"))
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.location) as con:  # commits on success
                yield con
            return
        # notes are customer data: the file (and so its WAL files) 0600, its folder 0700
        private_file(Path(self.location))
        con = sqlite3.connect(self.location, timeout=30)
        try:
            with con:  # commits on success, rolls back on error
                yield con
        finally:
            con.close()

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def _execute(self, con, text: str, params=()):
        return con.execute(self._sql(text), params)

    def _ensure(self, con) -> None:
        if self._ready:
            return
        if not self.postgres:
            con.execute("PRAGMA journal_mode=WAL")
        serial = "BIGINT GENERATED BY DEFAULT AS IDENTITY" if self.postgres else "INTEGER"
        con.execute(_TABLE.format(serial=serial))
        if "recorded_key" not in self._columns(con):
            con.execute(_MIGRATE)
        con.execute(_INDEX)
        self._ready = True

    def _columns(self, con) -> set[str]:
        if self.postgres:
            query = "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            return {row[0] for row in con.execute(query, ("outcomes",)).fetchall()}
        return {row[1] for row in con.execute("PRAGMA table_info(outcomes)").fetchall()}

    def record(
        self,
        *,
        request_id: str,
        customer_id: int | str,
        rm_id: str | None,
        channel: str,
        reached: bool,
        result: str,
        recorded_by: str,
        recorded_key: str,
        next_step: str = "",
        note: str = "",
        recorded_at: datetime | None = None,
    ) -> tuple[Outcome, bool]:
        """Store one outcome; return it and whether it is new.

        ``recorded_by`` is the key's name (shown), ``recorded_key`` its identity (the SHA-256 of
        the keys file). A repeat of (``recorded_key``, ``request_id``) with the same customer
        and content stores nothing and returns the outcome stored the first time with
        ``False``. ``recorded_at`` defaults to now (UTC).

        Raises
        ------
        OutcomeConflict
            When the key used ``request_id`` before for another customer or other content.
        OutcomeError
            For a channel or result outside :data:`CHANNELS` / :data:`RESULTS`, or a note over
            500 characters.
        """
        _check(channel, result, note, next_step)
        when = (recorded_at or datetime.now(UTC)).astimezone(UTC)
        row = (
            request_id,
            str(customer_id),
            isinstance(customer_id, int),
            rm_id,
            channel,
            bool(reached),
            result,
            next_step,
            note,
            when.isoformat(timespec="seconds"),
            recorded_by,
            recorded_key,
        )
        names = [*_COLUMNS[1:12], "recorded_key"]
        with self._connect() as con:
            self._ensure(con)
            inserted = self._execute(
                con,
                f"""
                INSERT INTO outcomes ({", ".join(names)})
                VALUES ({", ".join("?" * len(names))})
                ON CONFLICT (recorded_key, request_id) DO NOTHING""",
                row,
            ).rowcount
            stored = self._execute(
                con,
                f"SELECT {', '.join(_COLUMNS)} FROM outcomes "
                "WHERE recorded_key = ? AND request_id = ?",
                (recorded_key, request_id),
            ).fetchone()
        outcome = _outcome(stored)
        if inserted != 1 and _content(outcome) != _content_of(row, names):
            raise OutcomeConflict(
                f"request_id {request_id!r} was used before by this key for another outcome; "
                "send a new request_id for a new outcome"
            )
        return outcome, inserted == 1

    def for_customer(self, customer_id: int | str) -> list[Outcome]:
        """Every outcome recorded for ``customer_id``, newest first."""
        return self._select(
            "customer_id = ? AND customer_id_int = ? ORDER BY recorded_at DESC, outcome_id DESC",
            (str(customer_id), isinstance(customer_id, int)),
        )

    def latest(self, customer_ids: list) -> dict:
        """The newest outcome of each of ``customer_ids`` that has one, by customer id (one
        query per 500 ids: what a list of customers shows)."""
        out: dict = {}
        ids = list(dict.fromkeys(customer_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            found = self._select(
                f"customer_id IN ({marks}) ORDER BY recorded_at DESC, outcome_id DESC",
                tuple(str(c) for c in chunk),
            )
            wanted = {(str(c), isinstance(c, int)): c for c in chunk}
            for outcome in found:  # newest first: the first of each customer is its latest
                key = wanted.get((str(outcome.customer_id), isinstance(outcome.customer_id, int)))
                if key is not None and key not in out:
                    out[key] = outcome
        return out

    def pending_export(self) -> list[Outcome]:
        """Outcomes not yet exported to a warehouse, oldest first."""
        return self._select("exported_at IS NULL ORDER BY outcome_id")

    def _select(self, where: str, params=()) -> list[Outcome]:
        with self._connect() as con:
            self._ensure(con)
            query = f"SELECT {', '.join(_COLUMNS)} FROM outcomes WHERE {where}"
            rows = self._execute(con, query, params).fetchall()
        return [_outcome(r) for r in rows]

    def mark_exported(self, outcome_ids: list[int], at: datetime) -> None:
        with self._connect() as con:
            self._ensure(con)
            for start in range(0, len(outcome_ids), 500):
                chunk = outcome_ids[start : start + 500]
                self._execute(
                    con,
                    "UPDATE outcomes SET exported_at = ? WHERE outcome_id IN "
                    f"({', '.join('?' * len(chunk))})",
                    (at.isoformat(timespec="seconds"), *chunk),
                )


def _check(channel: str, result: str, note: str, next_step: str) -> None:
    if channel not in CHANNELS:
        raise OutcomeError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if result not in RESULTS:
        raise OutcomeError(f"result must be one of {', '.join(RESULTS)}, not {result!r}")
    if len(note) > NOTE_CHARS or len(next_step) > NEXT_STEP_CHARS:
        raise OutcomeError(
            f"a note has at most {NOTE_CHARS} characters, a next step at most {NEXT_STEP_CHARS}"
        )


def _content(outcome: Outcome) -> tuple:
    """What makes two submissions the same outcome: the customer (and its id's kind) and what
    was recorded."""
    return (
        str(outcome.customer_id),
        isinstance(outcome.customer_id, int),
        outcome.channel,
        outcome.reached,
        outcome.result,
        outcome.next_step,
        outcome.note,
    )


def _content_of(row: tuple, names: list[str]) -> tuple:
    values = dict(zip(names, row, strict=True))
    return tuple(
        bool(values[c]) if c in ("customer_id_int", "reached") else values[c] for c in _CONTENT
    )


def _outcome(row) -> Outcome:
    values = dict(zip(_COLUMNS, row, strict=True))
    is_int = bool(values.pop("customer_id_int"))
    values["customer_id"] = int(values["customer_id"]) if is_int else values["customer_id"]
    values["reached"] = bool(values["reached"])
    return Outcome(**values)


def interaction_rows(
    outcomes: list[Outcome], interactions: pd.DataFrame, customers: pd.DataFrame, rms: pd.DataFrame
) -> pd.DataFrame:
    """Outcomes as rows of the warehouse's ``interactions`` table, typed like its columns.

    ``interaction_id`` keeps the table's id type: ``EXPORT_ID_BASE + outcome_id`` for integer
    ids, ``"OUT-<outcome_id>"`` for string ids. ``kind`` is the channel, ``outcome`` the result.
    """

    def like(values: list, column: pd.Series):
        if pd.api.types.is_integer_dtype(column):
            return pd.array([int(v) for v in values], dtype=column.dtype)
        return pd.array([str(v) for v in values], dtype=column.dtype)

    ids = (
        [EXPORT_ID_BASE + o.outcome_id for o in outcomes]
        if pd.api.types.is_integer_dtype(interactions["interaction_id"])
        else [f"OUT-{o.outcome_id}" for o in outcomes]
    )
    ts_dtype = interactions["ts"].dtype
    stamps = pd.to_datetime([o.recorded_at for o in outcomes], utc=True)
    stamps = stamps.tz_convert(None) if getattr(ts_dtype, "tz", None) is None else stamps
    frame = pd.DataFrame(
        {
            "interaction_id": like(ids, interactions["interaction_id"]),
            "customer_id": like([o.customer_id for o in outcomes], customers["customer_id"]),
            "rm_id": like([o.rm_id for o in outcomes], rms["rm_id"]),
            "ts": pd.Series(stamps).astype(ts_dtype),
            "kind": pd.array([o.channel for o in outcomes], dtype=interactions["kind"].dtype),
            "outcome": pd.array([o.result for o in outcomes], dtype=interactions["outcome"].dtype),
        }
    )
    return frame[list(interactions.columns)]


def export_to_warehouse(store: OutcomeStore, warehouse: Path) -> tuple[Path | None, int]:
    """Append the outcomes not yet exported as ``interactions/part-outcomes-<time>.parquet``
    and mark them exported; return the part (None when there was nothing new) and its rows.

    An outcome without an RM (a customer no RM owns) cannot be an interaction: it stays
    pending. The part is written atomically, then the outcomes are marked; a crash between the
    two leaves a part whose ids a later export would repeat, so the part's ids are checked.
    """
    from features.atomic import atomic_file

    folder = Path(warehouse) / "interactions"
    if not folder.is_dir():
        raise OutcomeError(
            f"{folder} is not a directory of parquet parts: is {warehouse} a "
            "warehouse directory (retain synth / the bank's export)?"
        )
    pending = [o for o in store.pending_export() if o.rm_id is not None]
    if not pending:
        return None, 0
    interactions = pd.read_parquet(folder)
    customers = pd.read_parquet(_table(warehouse, "customers"), columns=["customer_id"])
    rms = pd.read_parquet(_table(warehouse, "rms"), columns=["rm_id"])
    rows = interaction_rows(pending, interactions.head(0), customers.head(0), rms.head(0))
    already = set(interactions["interaction_id"]) & set(rows["interaction_id"])
    rows = rows[~rows["interaction_id"].isin(already)]
    now = datetime.now(UTC)
    part = folder / f"part-outcomes-{now:%Y%m%dT%H%M%S%fZ}.parquet"
    if len(rows):
        with atomic_file(part) as tmp:
            rows.to_parquet(tmp, index=False)
    store.mark_exported([o.outcome_id for o in pending], now)
    return (part if len(rows) else None), len(rows)


def _table(warehouse: Path, name: str) -> Path:
    single = Path(warehouse) / f"{name}.parquet"
    return single if single.exists() else Path(warehouse) / name
