"""The audit log proves who read what, page sessions end when they should, and what holds
customer data is readable by the service alone (issue 19) — on a service of its own: these
tests read every line it writes, and its sessions end after a few seconds idle."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import time
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ROOT, run_retain
from tests.serving.page_session import copied, form_token, log_in
from tests.serving.service_process import add_key, start_site

IDLE_SECONDS = 6


@pytest.fixture(scope="module")
def guarded(scored, tmp_path_factory):
    """Outcomes and sessions in a folder the service makes; sessions idle out in 6 s."""
    folder = tmp_path_factory.mktemp("guarded")
    private = folder / "private" / "data"
    config = folder / "retain.toml"
    text = (ROOT / "retain.toml").read_text(encoding="utf-8")
    assert "session_idle_minutes = 30\n" in text
    text = text.replace(
        "session_idle_minutes = 30\n", f"session_idle_minutes = {IDLE_SECONDS / 60}\n"
    )
    text = text.replace("[service]\n", f'[service]\nsessions = "{private / "sessions.db"}"\n', 1)
    config.write_text(text, encoding="utf-8")
    site = start_site(
        scored,
        folder,
        books=2,
        outcomes=str(private / "outcomes.db"),
        args=("--config", str(config)),
    )
    try:
        yield site
    finally:
        site.service.stop()


def lines(site) -> list[dict]:
    return [json.loads(x) for x in site.audit.read_text().splitlines()]


def line_of(site, request_id: str) -> dict:
    found = [x for x in lines(site) if x.get("request_id") == request_id]
    assert len(found) == 1, (request_id, found)
    return found[0]


def customers_of(site, rm: str, count: int) -> list[int]:
    scores = site.scores()
    return [int(c) for c in scores.loc[scores["rm_id"].astype(str) == rm, "customer_id"][:count]]


def test_each_request_is_one_line_with_the_customers_it_read_or_tried(guarded):
    rm, other = guarded.books
    three = customers_of(guarded, other, 3)
    scored = guarded.call("POST", "/v1/score", "crm", json={"customer_ids": three})
    assert scored.status_code == 200
    line = line_of(guarded, scored.json()["request_id"])
    assert line["customer_ids"] == three and line["customers"] == 3
    assert (line["key"], line["role"], line["route"], line["status"]) == (
        "crm-system",
        "crm",
        "/v1/score",
        200,
    )
    denied = guarded.call("GET", f"/v1/customers/{three[0]}", rm)
    assert denied.status_code == 403
    line = line_of(guarded, denied.json()["error"]["request_id"])
    assert (line["key"], line["role"], line["rm_book"], line["status"]) == (
        f"rm-{rm}",
        "rm",
        rm,
        403,
    )
    assert line["route"] == "/v1/customers/{customer_id}" and line["customer_ids"] == [three[0]]
    listed = guarded.call("POST", "/v1/retention_list", "crm", json={"rm_id": other, "k": 5})
    line = line_of(guarded, listed.json()["request_id"])
    assert line["list_id"] == other
    assert line["customer_ids"] == [e["customer_id"] for e in listed.json()["entries"]]
    missing = guarded.call("GET", "/v1/customers/999999999", "admin")
    assert missing.status_code == 404
    line = line_of(guarded, missing.json()["error"]["request_id"])
    assert line["customer_ids"] == [999999999] and line["status"] == 404


def test_bad_keys_and_failed_logins_are_lines_too(guarded):
    token = "rk_" + secrets.token_urlsafe(32)
    refused = guarded.call(
        "POST",
        "/v1/score",
        json={"customer_ids": [1]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 401
    line = line_of(guarded, refused.json()["error"]["request_id"])
    assert (line["event"], line["reason"], line["route"], line["status"]) == (
        "refused",
        "unknown_key",
        "/v1/score",
        401,
    )
    assert line["key_prefix"] == token[:8] and token not in guarded.audit.read_text()
    # an expired key is refused like a revoked one, and named
    from serving.api.auth import load_keys, save_keys

    old = add_key(guarded.keys, guarded.env, "--role", "crm", "--name", "crm-old")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
    keys = load_keys(guarded.keys)
    save_keys(guarded.keys, [replace(k, expires=past) if k.name == "crm-old" else k for k in keys])
    expired = guarded.call("GET", "/v1/customers/1", headers={"Authorization": f"Bearer {old}"})
    assert expired.status_code == 401
    line = line_of(guarded, expired.json()["error"]["request_id"])
    assert (line["reason"], line["key"]) == ("expired_key", "crm-old")
    with closing(copied(guarded.url, "")) as browser:
        form = browser.get("/ui/login")
        failed = browser.post(
            "/ui/login",
            data={"csrf": form_token(form.text), "key": "rk_wrong"},
            headers={"Cookie": f"retain_login={form.cookies['retain_login']}"},
        )
    assert failed.status_code == 401
    assert any(
        x.get("event") == "login_failed" and x["reason"] == "unknown_key" for x in lines(guarded)
    )


def test_the_chain_check_finds_an_edited_or_removed_line(guarded, tmp_path):
    for rm in guarded.books * 2:  # lines from both workers, interleaved
        guarded.call(
            "POST", "/v1/score", "crm", json={"customer_ids": customers_of(guarded, rm, 2)}
        )
    copy = tmp_path / "audit.log"
    shutil.copy(guarded.audit, copy)
    checked = run_retain(["audit", "verify", "--log", str(copy)], guarded.env)
    assert checked.returncode == 0, checked.stderr
    text = copy.read_text().splitlines()
    assert len(text) >= 4
    edited = text.copy()
    edited[2] = re.sub(r'"status": \d+', '"status": 299', edited[2], count=1)
    assert edited[2] != text[2]
    copy.write_text("\n".join(edited) + "\n")
    broken = run_retain(["audit", "verify", "--log", str(copy)], guarded.env)
    assert broken.returncode == 1 and "line 3 " in broken.stderr, broken.stderr
    copy.write_text("\n".join(text[:1] + text[2:]) + "\n")  # a line taken out
    removed = run_retain(["audit", "verify", "--log", str(copy)], guarded.env)
    assert removed.returncode == 1 and "line 2 does not follow" in removed.stderr, removed.stderr


def test_logout_ends_every_copy_of_a_session(guarded):
    rm = guarded.books[0]
    with closing(log_in(guarded.url, guarded.tokens[rm])) as browser:
        thief = copied(guarded.url, browser.cookies["retain_session"])
        assert thief.get("/ui/list").status_code == 200
        page = browser.get("/ui/list")
        assert browser.post("/ui/logout", data={"csrf": form_token(page.text)}).status_code == 303
    for _ in range(4):  # whichever worker answers
        after = thief.get("/ui/list")
        assert after.status_code == 303 and after.headers["location"] == "/ui/login"
    assert any(x.get("endpoint") == "/ui/logout" and x["key"] == f"rm-{rm}" for x in lines(guarded))


def test_an_idle_session_ends_and_a_used_one_does_not(guarded):
    rm = guarded.books[0]
    with (
        closing(log_in(guarded.url, guarded.tokens[rm])) as used,
        closing(log_in(guarded.url, guarded.tokens[rm])) as idle,
    ):
        thief = copied(guarded.url, idle.cookies["retain_session"])
        assert thief.get("/ui/list").status_code == 200
        for _ in range(4):  # 8 s of use, a request every 2 s: longer than the idle limit
            time.sleep(IDLE_SECONDS / 3)
            assert used.get("/ui/list").status_code == 200
        assert thief.get("/ui/list").status_code == 303  # idle since the first request


def test_a_revoked_key_ends_its_sessions(guarded):
    rm = guarded.books[1]
    token = add_key(guarded.keys, guarded.env, "--role", "rm", "--rm-id", rm, "--name", "rm-leaver")
    with closing(log_in(guarded.url, token)) as browser:
        thief = copied(guarded.url, browser.cookies["retain_session"])
        assert thief.get("/ui/list").status_code == 200
        revoked = run_retain(
            ["keys", "revoke", "--keys", str(guarded.keys), "--name", "rm-leaver"], guarded.env
        )
        assert revoked.returncode == 0, revoked.stderr
        assert thief.get("/ui/list").status_code == 303


def test_files_with_customer_data_are_the_services_alone(guarded, scored):
    rm = guarded.books[0]
    mine = customers_of(guarded, rm, 1)[0]
    note = {
        "request_id": "modes-1",
        "customer_id": mine,
        "channel": "call",
        "reached": True,
        "result": "stays",
        "note": "private",
    }
    assert guarded.call("POST", "/v1/outcomes", rm, json=note).status_code == 201
    log_in(guarded.url, guarded.tokens[rm]).close()
    private = guarded.folder / "private" / "data"
    for folder in (private, private.parent):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    files = {p.name for p in private.iterdir()}
    assert {"outcomes.db", "sessions.db"} <= files, files
    for path in [*private.iterdir(), guarded.audit, guarded.keys]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert not (guarded.keys.parent / "ui_secret").exists()  # no session secret beside the keys
    # the month's scores (names, lists) as `retain score` wrote them
    assert stat.S_IMODE(os.stat(scored.out).st_mode) == 0o700
    for path in scored.out.rglob("*"):
        assert stat.S_IMODE(os.stat(path).st_mode) == (0o700 if path.is_dir() else 0o600), path
