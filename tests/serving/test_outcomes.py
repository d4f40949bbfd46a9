"""Outcomes RMs record (docs/design.md §12): the store on SQLite and PostgreSQL, the API's rights
and idempotency on a real service, and the export into the warehouse's interactions."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest

from serving.outcomes import EXPORT_ID_BASE, OutcomeConflict, OutcomeError, OutcomeStore
from tests.conftest import run_retain
from tests.features.postgres_server import PostgresServer, find_bindir
from tests.serving.service_process import start_site


@pytest.fixture(scope="module")
def postgres_url():
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl); install postgresql or run `make pg`")
    server = PostgresServer(bindir).start()
    try:
        yield server.url
    finally:
        server.stop()


KEY_A, KEY_B, KEY_CRM = "a" * 64, "b" * 64, "c" * 64  # the keys' SHA-256, their identity


def round_trip(store: OutcomeStore) -> None:
    call = {
        "request_id": "r-1",
        "customer_id": 42,
        "rm_id": "RM1",
        "channel": "call",
        "reached": True,
        "result": "stays",
        "next_step": "call back in May",
        "note": "renewing the deposit",
        "recorded_by": "rm-RM1",
        "recorded_key": KEY_A,
    }
    first, created = store.record(**call, recorded_at=datetime(2024, 3, 1, 9, tzinfo=UTC))
    assert created and first.customer_id == 42 and first.reached is True
    assert "recorded_key" not in first.public()  # the key's hash never leaves the store
    again, created = store.record(**call)  # a retry: the same outcome
    assert not created and again == first  # stored once, answered with the stored record
    for changed in ({"customer_id": 43}, {"result": "complaint"}, {"note": "other"}):
        with pytest.raises(OutcomeConflict, match="used before by this key"):
            store.record(**{**call, **changed})  # the same request id for another outcome
    # a later key given the same name is another key: its r-1 is its own, never the first
    reused, created = store.record(**{**call, "customer_id": 7, "recorded_key": KEY_B})
    assert created and reused.outcome_id != first.outcome_id and reused.customer_id == 7
    later, _ = store.record(
        **{**call, "request_id": "r-2", "channel": "message", "result": "unreachable"},
        recorded_at=datetime(2024, 3, 2, tzinfo=UTC),
    )
    store.record(
        **{**call, "customer_id": "0042", "recorded_by": "crm-system", "recorded_key": KEY_CRM}
    )
    assert [o.outcome_id for o in store.for_customer(42)] == [later.outcome_id, first.outcome_id]
    assert [o.customer_id for o in store.for_customer("0042")] == ["0042"]  # ids kept as given
    assert store.for_customer(8) == []
    with pytest.raises(OutcomeError, match="channel must be one of"):
        store.record(**{**call, "request_id": "r-3", "channel": "fax"})
    assert len(store.pending_export()) == 4


def test_a_store_made_before_keys_were_identities_is_migrated(tmp_path):
    """An outcomes.db of the previous release (unique by key name) gains the key column and
    stays readable; the old rows keep their content."""
    path = tmp_path / "outcomes.db"
    with sqlite3.connect(path) as con:
        con.execute(
            """CREATE TABLE outcomes (outcome_id INTEGER PRIMARY KEY, request_id TEXT NOT NULL,
            customer_id TEXT NOT NULL, customer_id_int BOOLEAN NOT NULL, rm_id TEXT,
            channel TEXT NOT NULL, reached BOOLEAN NOT NULL, result TEXT NOT NULL,
            next_step TEXT NOT NULL, note TEXT NOT NULL, recorded_at TEXT NOT NULL,
            recorded_by TEXT NOT NULL, exported_at TEXT, UNIQUE (recorded_by, request_id))"""
        )
        con.execute(
            "INSERT INTO outcomes VALUES (1, 'old-1', '5', 1, 'RM1', 'call', 1, 'stays', '', "
            "'', '2024-01-01T00:00:00+00:00', 'rm-RM1', NULL)"
        )
    store = OutcomeStore(path)
    assert [o.request_id for o in store.for_customer(5)] == ["old-1"]
    outcome, created = store.record(
        request_id="new-1",
        customer_id=5,
        rm_id="RM1",
        channel="visit",
        reached=True,
        result="stays",
        recorded_by="rm-RM1",
        recorded_key=KEY_A,
    )
    assert created and [o.request_id for o in store.for_customer(5)] == ["new-1", "old-1"]


def test_sqlite_store_round_trip_in_wal_mode(tmp_path):
    store = OutcomeStore(tmp_path / "data" / "outcomes.db")
    round_trip(store)
    with sqlite3.connect(tmp_path / "data" / "outcomes.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_postgres_store_round_trip(postgres_url):
    round_trip(OutcomeStore(postgres_url))


@pytest.fixture(scope="module")
def outcomes_api(scored, tmp_path_factory):
    """A service of its own: these tests count every outcome and audit line it holds."""
    site = start_site(scored, tmp_path_factory.mktemp("outcomes"), books=2)
    try:
        yield {
            "url": site.url,
            "tokens": site.tokens,
            "books": site.books,
            "scores": site.scores(),
            "store": Path(site.outcomes),
            "audit": site.audit,
        }
    finally:
        site.service.stop()


def post(api, token, **body) -> httpx.Response:
    return httpx.post(
        api["url"] + "/v1/outcomes",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {api['tokens'][token]}"},
    )


def test_outcomes_through_the_service(outcomes_api):
    api = outcomes_api
    mine, other = api["books"]
    scores = api["scores"]
    own = scores.loc[scores["rm_id"].astype(str) == mine, "customer_id"].iloc[0]
    theirs = scores.loc[scores["rm_id"].astype(str) == other, "customer_id"].iloc[0]
    body = {
        "customer_id": int(own),
        "channel": "call",
        "reached": True,
        "result": "stays",
        "next_step": "send the renewal terms",
        "note": "happy with the rate",
    }
    first = post(api, mine, request_id="page-1", **body)
    assert first.status_code == 201, first.text
    repeat = post(api, mine, request_id="page-1", **body)  # a retry: the stored outcome
    assert repeat.status_code == 200 and repeat.json()["outcome"] == first.json()["outcome"]
    changed = post(api, mine, request_id="page-1", **{**body, "result": "complaint"})
    assert changed.status_code == 409  # the same request id for another outcome
    outside = post(api, mine, request_id="page-2", **{**body, "customer_id": int(theirs)})
    assert outside.status_code == 403 and set(outside.json()) == {"error"}
    by_crm = post(api, "crm", request_id="crm-1", **{**body, "customer_id": int(theirs)})
    assert by_crm.status_code == 201 and by_crm.json()["outcome"]["rm_id"] == other
    assert (
        post(api, "crm", request_id="crm-2", **{**body, "customer_id": 999_999_999}).status_code
        == 404
    )
    too_long = post(api, mine, request_id="page-3", **{**body, "note": "x" * 501})
    assert too_long.status_code == 422
    listed = httpx.get(
        api["url"] + "/v1/outcomes",
        params={"customer_id": str(own)},
        headers={"Authorization": f"Bearer {api['tokens'][mine]}"},
    )
    assert listed.status_code == 200
    assert [o["request_id"] for o in listed.json()["outcomes"]] == ["page-1"]
    denied = httpx.get(
        api["url"] + "/v1/outcomes",
        params={"customer_id": str(theirs)},
        headers={"Authorization": f"Bearer {api['tokens'][mine]}"},
    )
    assert denied.status_code == 403
    assert len(OutcomeStore(api["store"]).pending_export()) == 2
    writes = [
        json.loads(x)
        for x in api["audit"].read_text().splitlines()
        if '"/outcomes"' in x and '"read"' not in x
    ]
    # two writes, a repeat, a conflict, the write and the read outside the book refused, an
    # unknown customer, a note too long: every request is a line, whatever its answer
    assert sorted(w["status"] for w in writes) == [200, 201, 201, 403, 403, 404, 409, 422]


def test_export_appends_an_interactions_part_once(scored, tmp_path):
    from features.schema import validate_warehouse

    warehouse = tmp_path / "warehouse"
    shutil.copytree(scored.bank, warehouse)
    before = pd.read_parquet(warehouse / "interactions")
    customers = pd.read_parquet(warehouse / "customers", columns=["customer_id"])
    rms = pd.read_parquet(warehouse / "rms.parquet")
    store = OutcomeStore(tmp_path / "outcomes.db")
    for n, (customer, rm) in enumerate(
        zip(customers["customer_id"][:3], rms["rm_id"][:3], strict=True)
    ):
        store.record(
            request_id=f"r-{n}",
            customer_id=int(customer),
            rm_id=str(rm),
            channel=("call", "visit", "message")[n],
            reached=n != 2,
            result=("stays", "will_move_money", "unreachable")[n],
            recorded_by="ops",
            recorded_key=KEY_CRM,
            recorded_at=datetime(2024, 6, 1 + n, 10, tzinfo=UTC),
        )
    args = [
        "outcomes",
        "export",
        "--store",
        str(tmp_path / "outcomes.db"),
        "--warehouse",
        str(warehouse),
        "--scores",
        str(scored.out),
    ]
    first = run_retain(args, scored.env)
    assert first.returncode == 0, first.stderr
    # the month's randomised assignments went back as list_assignments (the uplift history)
    history = pd.read_parquet(warehouse / "list_assignments")
    drawn = pd.read_parquet(scored.out / "assignments.parquet")
    drawn = drawn[(drawn["p_treat"] > 0) & (drawn["p_treat"] < 1)]
    assert len(history) == len(drawn) > 0 and history["p_treat"].between(0, 1).all()
    parts = sorted((warehouse / "interactions").glob("part-outcomes-*.parquet"))
    assert len(parts) == 1
    added = pd.read_parquet(parts[0])
    assert added.dtypes.to_dict() == before.dtypes.to_dict()
    assert added["interaction_id"].min() >= EXPORT_ID_BASE > before["interaction_id"].max()
    assert added["kind"].tolist() == ["call", "visit", "message"]
    assert added["outcome"].tolist() == ["stays", "will_move_money", "unreachable"]
    assert validate_warehouse(warehouse) == []
    second = run_retain(args, scored.env)
    assert second.returncode == 0 and "no new outcomes" in second.stdout
    assert "no new randomised assignments" in second.stdout
    assert len(pd.read_parquet(warehouse / "list_assignments")) == len(drawn)
    assert sorted((warehouse / "interactions").glob("part-outcomes-*.parquet")) == parts
    assert len(pd.read_parquet(warehouse / "interactions")) == len(before) + 3
