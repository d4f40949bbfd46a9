"""Keys that expire, and the audit log's hash chain: written by several processes at once, and
checked line by line (serving/api/auth.py)."""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from serving.api.auth import (
    AuditLog,
    KeyError_,
    KeyRing,
    add_key,
    expiry,
    load_keys,
    save_keys,
    verify_audit,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_an_expiry_is_days_from_now_or_the_end_of_a_date():
    assert expiry("90d", NOW) == "2025-05-30T12:00:00+00:00"
    assert expiry("2025-12-31", NOW) == "2025-12-31T23:59:59+00:00"
    for bad in ("0d", "2024-12-31", "soon", "90"):
        with pytest.raises(KeyError_):
            expiry(bad, NOW)


def test_an_expired_key_is_refused_and_named(tmp_path):
    keys = tmp_path / "keys.json"
    _, plain = add_key(keys, "crm-a", "crm", expires="30d")
    ring = KeyRing(keys)
    assert ring.identify(f"Bearer {plain}").name == "crm-a"
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    save_keys(keys, [replace(k, expires=past) for k in load_keys(keys)])
    assert ring.identify(f"Bearer {plain}") is None
    assert ring.why_refused(f"Bearer {plain}") == {
        "reason": "expired_key",
        "key": "crm-a",
        "role": "crm",
    }
    assert ring.why_refused("Bearer rk_unknown")["reason"] == "unknown_key"
    assert ring.why_refused(None) == {"reason": "no_key"}


def _write(path, worker: int) -> None:
    log = AuditLog(path)
    for i in range(200):
        log.write(worker=worker, i=i, customer_ids=[worker, i])


def test_writers_in_several_processes_keep_one_chain(tmp_path):
    path = tmp_path / "audit.log"
    workers = [multiprocessing.Process(target=_write, args=(path, w)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    lines, last, problem = verify_audit(path)
    assert (lines, problem) == (600, None)
    assert json.loads(path.read_text().splitlines()[-1])["hash"] == last


@pytest.mark.parametrize(
    "tamper, found",
    [
        (
            lambda lines: lines.__setitem__(4, lines[4].replace('"i": ', '"i": 1')),
            "line 5 was changed",
        ),
        (lambda lines: lines.pop(4), "line 5 does not follow line 4"),
        (lambda lines: lines.insert(4, lines[7]), "line 5 does not follow line 4"),
    ],
)
def test_the_chain_check_names_the_first_line_touched(tmp_path, tamper, found):
    path = tmp_path / "audit.log"
    _write(path, 0)
    lines = path.read_text().splitlines()
    tamper(lines)
    path.write_text("\n".join(lines) + "\n")
    checked, _, problem = verify_audit(path)
    assert checked == 4 and problem.startswith(found), problem


def test_refusals_are_rate_limited_and_the_rest_counted(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    log.WINDOW = 0.5
    written = [log.write_limited("refused", lambda: {"reason": "unknown_key"}) for _ in range(30)]
    assert sum(written) == log.LIMIT
    time.sleep(0.6)
    assert log.write_limited("refused", lambda: {"reason": "unknown_key"})
    last = json.loads((tmp_path / "audit.log").read_text().splitlines()[-1])
    assert last["suppressed"] == 30 - log.LIMIT and last["event"] == "refused"


def test_a_line_stays_one_line_whatever_an_id_holds(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    odd = "a\u2028b\x85c\nd\u7f6e"  # line and paragraph separators, a newline, a CJK character
    log.write(customer_ids=[odd])
    log.write(customer_ids=[1])
    assert len(path.read_text().splitlines()) == 2
    assert json.loads(path.read_text().splitlines()[0])["customer_ids"] == [odd]
    assert verify_audit(path)[2] is None
