"""What a bank's security review tries on a real service: another RM's outcome through a reused
key name or request id, and a stranger stalling the API with slow bodies."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlparse

import httpx
import pandas as pd

from tests.conftest import run_retain
from tests.serving.service_process import add_key


def outcome(customer_id, request_id: str, note: str) -> dict:
    return {
        "request_id": request_id,
        "customer_id": customer_id,
        "channel": "call",
        "reached": True,
        "result": "stays",
        "note": note,
    }


def test_a_reused_key_name_or_request_id_never_returns_another_customers_outcome(site):
    scores = site.scores()
    first_rm, second_rm = site.books[:2]
    theirs, also = scores.loc[scores["rm_id"].astype(str) == first_rm, "customer_id"].iloc[:2]
    mine = scores.loc[scores["rm_id"].astype(str) == second_rm, "customer_id"].iloc[0]
    token = add_key(site.keys, site.env, "--role", "rm", "--rm-id", first_rm, "--name", "shared")
    headers = {"Authorization": f"Bearer {token}"}
    secret = outcome(int(theirs), "shared-1", "confidential: moving 2M to another bank")
    created = site.call("POST", "/v1/outcomes", json=secret, headers=headers)
    assert created.status_code == 201, created.text
    # the same key, the same request id, another customer or other content: 409, not the stored
    for other in ({**secret, "customer_id": int(also)}, {**secret, "note": "changed"}):
        replay = site.call("POST", "/v1/outcomes", json=other, headers=headers)
        assert replay.status_code == 409, replay.text
        assert "confidential" not in replay.text
    assert site.call("POST", "/v1/outcomes", json=secret, headers=headers).status_code == 200
    # the name cannot be given again, even after revocation
    revoked = run_retain(["keys", "revoke", "--keys", str(site.keys), "--name", "shared"], site.env)
    assert revoked.returncode == 0, revoked.stderr
    again = run_retain(
        ["keys", "add", "--keys", str(site.keys), "--role", "rm", "--rm-id", second_rm]
        + ["--name", "shared"],
        site.env,
    )
    assert again.returncode == 2 and "never reused" in again.stderr
    # another RM's key replaying the request id for its own customer records its own outcome
    other = add_key(site.keys, site.env, "--role", "rm", "--rm-id", second_rm, "--name", "shared2")
    reply = site.call(
        "POST",
        "/v1/outcomes",
        json=outcome(int(mine), "shared-1", "mine"),
        headers={"Authorization": f"Bearer {other}"},
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()["outcome"]
    assert body["customer_id"] == int(mine) and body["note"] == "mine"
    assert "confidential" not in reply.text


def slow_senders(url: str, count: int, path: str = "/v1/score", token: str | None = None):
    """``count`` connections that declare a 100-byte body and send one byte of it."""
    where = urlparse(url)
    sockets = []
    for _ in range(count):
        s = socket.create_connection((where.hostname, where.port), timeout=10)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        s.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {where.hostname}\r\n{auth}"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            ).encode()
        )
        sockets.append(s)
    return sockets


def first_line(s: socket.socket) -> str:
    return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def test_six_slow_strangers_do_not_stall_the_api(site):
    ids = site.scores()["customer_id"].head(5).tolist()
    strangers = slow_senders(site.url, 6)
    answered = []

    def normal() -> None:
        started = time.perf_counter()
        try:
            r = site.call("POST", "/v1/score", "crm", json={"customer_ids": ids}, timeout=5)
            answered.append(r.status_code == 200 and time.perf_counter() - started <= 1.0)
        except httpx.HTTPError:  # a timeout or a dropped connection: not answered
            answered.append(False)

    try:
        for _ in range(10):  # 40 normal requests, four at a time, while the strangers hang on
            threads = [threading.Thread(target=normal) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        refused = [first_line(s) for s in strangers]
    finally:
        for s in strangers:
            s.close()
    assert sum(answered) >= 38, f"{sum(answered)} of {len(answered)} answered 200 within 1 s"
    assert all(" 401 " in line for line in refused), refused  # told at once, body never read


def test_a_slow_body_with_a_key_gets_408_and_gives_its_slot_back(site):
    started = time.perf_counter()
    [slow] = slow_senders(site.url, 1, token=site.tokens["crm"])
    try:
        slow.settimeout(15)
        line = first_line(slow)
        waited = time.perf_counter() - started
    finally:
        slow.close()
    assert " 408 " in line and 4 <= waited <= 8, (line, waited)


def test_huge_bodies_are_refused_before_they_are_read(site):
    where = urlparse(site.url)
    for path, media, size in (
        ("/v1/score", "application/json", 25 * 2**20),
        ("/ui/login", "application/x-www-form-urlencoded", 60 * 2**20),
    ):
        with socket.create_connection((where.hostname, where.port), timeout=10) as s:
            started = time.perf_counter()
            s.sendall(
                (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {media}\r\n"
                    f"Content-Length: {size}\r\n\r\n"
                ).encode()
            )
            line = first_line(s)
            assert time.perf_counter() - started < 2, path
        assert (" 401 " if path.startswith("/v1") else " 413 ") in line, (path, line)


def test_the_audit_line_of_a_conflict_names_no_content(site):
    lines = pd.read_json(site.audit, lines=True)
    conflicts = lines[lines["status"] == 409]
    assert len(conflicts) >= 1 and "note" not in conflicts.columns
