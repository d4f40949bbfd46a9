"""Faults: a tampered booster, a missing registry, a worker killed under load."""

from __future__ import annotations

import threading
import time

import httpx
import psutil
import pytest

from tests.conftest import run_retain
from tests.serving.service_process import start_service
from tests.serving.test_score import booster_file


@pytest.fixture(scope="module")
def admin(scored, tmp_path_factory):
    keys = tmp_path_factory.mktemp("fault-keys") / "keys.json"
    result = run_retain(
        ["keys", "add", "--keys", str(keys), "--role", "admin", "--name", "ops"], scored.env
    )
    return keys, result.stdout.strip().splitlines()[-1]


def stays_unready(service, seconds: float = 8) -> bool:
    service.wait_listening()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if service.ready():
            return False
        time.sleep(0.5)
    return True


def test_a_booster_with_one_byte_changed_is_never_served(scored, admin, tmp_path):
    keys, key = admin
    booster = booster_file(scored.store, "churn")
    original = booster.read_bytes()
    booster.write_bytes(original[:200] + bytes([original[200] ^ 1]) + original[201:])
    service = start_service(scored.env, tmp_path, scored.out, keys, workers=1)
    try:
        assert stays_unready(service)
        response = httpx.post(
            service.url + "/score",
            json={"customer_ids": [1]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 503 and "results" not in response.text
        assert "does not match the training tag" in service.tail()
    finally:
        service.stop()
        booster.write_bytes(original)


def test_a_missing_registry_is_named_and_nothing_is_served(scored, admin, tmp_path):
    keys, key = admin
    missing = tmp_path / "nowhere" / "mlflow.db"
    env = {**scored.env, "MLFLOW_TRACKING_URI": f"sqlite:///{missing}"}
    service = start_service(env, tmp_path, scored.out, keys, workers=1)
    try:
        assert stays_unready(service)
        response = httpx.get(
            service.url + "/customers/1", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 503
        assert "NOT READY" in service.tail() and str(missing) in service.tail()
    finally:
        service.stop()


def test_a_worker_killed_under_load_is_replaced(scored, admin, tmp_path):
    keys, key = admin
    service = start_service(scored.env, tmp_path, scored.out, keys, workers=2)
    outcomes: list[int] = []  # status, or -1 for a broken connection; 429 marks a shed request
    stop = threading.Event()

    def load():
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    r = client.post(
                        service.url + "/score",
                        json={"customer_ids": [1, 2, 3]},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    shed = r.status_code == 503 and "retry-after" in r.headers
                    outcomes.append(429 if shed else r.status_code)
                except httpx.HTTPError:
                    outcomes.append(-1)

    try:
        service.wait_ready()
        workers = _both_workers(service)
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(3)
        workers[0].kill()
        replacement = _replacement(service, {w.pid for w in workers})
        replaced_at = len(outcomes)
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join()
        errors = sum(code not in (200, 429) for code in outcomes)
        shed = outcomes.count(429)
        print(f"\nworker killed under load: {len(outcomes)} requests, {errors} errors, {shed} shed")
        assert replacement in {w.pid for w in _both_workers(service)}
        after = httpx.post(
            service.url + "/score",
            json={"customer_ids": [1]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert after.status_code == 200
        # from the replacement on, the load runs clean: answered, or turned away at once with
        # Retry-After. The four clients keep the connections they reopened on the surviving
        # worker when the other died, so it carries them alone and answers about half (the
        # bound leaves room: a quarter)
        tail = outcomes[replaced_at:]
        print(f"after the replacement: {len(tail)} requests, {tail.count(200)} answered")
        assert len(tail) >= 10 and set(tail) <= {200, 429}, tail
        assert tail.count(200) >= len(tail) / 4, tail
    finally:
        stop.set()
        service.stop()


def _both_workers(service, timeout: float = 60) -> list[psutil.Process]:
    """The two workers: ready means one answers, and on a busy machine the second may still be
    starting."""
    deadline = time.monotonic() + timeout
    while len(workers := _workers(service)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(workers) == 2, [w.cmdline() for w in workers]
    return workers


def _replacement(service, before: set[int], timeout: float = 120) -> int:
    """The pid of the worker that replaced one of ``before``, once BentoML has started it and
    its service is initialized (a third "initialized" line in the log: two at the start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = {w.pid for w in _workers(service)} - before
        if new and service.log.read_text(errors="replace").count("Service retain initialized") >= 3:
            return new.pop()
        time.sleep(0.5)
    raise AssertionError(f"no replacement worker within {timeout}s: {service.tail()}")


def _workers(service) -> list[psutil.Process]:
    found = []
    for process in psutil.Process(service.process.pid).children(recursive=True):
        try:
            if any("worker" in part for part in process.cmdline()):
                found.append(process)
        except psutil.Error:  # a worker just killed: a zombie until the arbiter reaps it
            pass
    return found
