"""The front proxy (deploy/nginx.conf on Debian's nginx, unprivileged, on loopback) in front of
a real `retain serve`: it serves the API and the page, turns a burst past its limit away with
503 + Retry-After in the API's envelope itself, in milliseconds, without the workers seeing
those requests, and no worker dies."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from deploy.proxy import nginx_binary, render, start
from tests.serving.service_process import free_port

BURST = 32
SLOTS = 2  # tight, so that a burst of BURST is past it whatever the machine's speed


@pytest.fixture(scope="module")
def proxy(site):
    nginx_binary()  # named failure when nginx is missing: `make nginx` (make test) installs it
    upstream = urlsplit(site.url).netloc
    started = start(f"127.0.0.1:{free_port()}", upstream, slots=SLOTS)
    try:
        yield started
    finally:
        started.stop()


def worker_pids(site) -> set[int]:
    root = psutil.Process(site.service.process.pid)
    return {p.pid for p in root.children(recursive=True) if any("worker" in a for a in p.cmdline())}


def shed_by_the_service(site) -> float:
    metrics = site.call("GET", "/metrics", "admin", timeout=10).text
    return sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("retain_requests_shed_total")
    )


def test_nginx_runs_unprivileged_and_every_field_of_the_template_is_filled(proxy):
    assert all(psutil.Process(pid).uids().effective != 0 for pid in proxy.pids())
    config = (proxy.prefix / "nginx.conf").read_text()
    assert not re.search(r"@[A-Z_]+@", config)
    assert f"limit_conn service {SLOTS};" in config
    with pytest.raises(ValueError, match="slots=0"):
        render("127.0.0.1:1", "127.0.0.1:2", slots=0)


def test_through_the_proxy_the_api_and_the_page_answer_as_the_service(proxy, site):
    assert httpx.get(proxy.url + "/readyz", timeout=10).status_code == 200
    customer = int(site.scores()["customer_id"].iloc[0])
    body = {"customer_ids": [customer], "lang": "en"}
    via = site.call("POST", "/v1/score", "crm", json=body, timeout=30)
    proxied = httpx.post(
        proxy.url + "/v1/score",
        json=body,
        headers={"Authorization": f"Bearer {site.tokens['crm']}"},
        timeout=30,
    )
    assert proxied.status_code == 200, proxied.text
    assert proxied.json()["results"] == via.json()["results"]
    assert httpx.post(proxy.url + "/v1/score", json=body, timeout=30).status_code == 401

    with httpx.Client(base_url=proxy.url, timeout=30) as page:
        login = page.get("/ui/login")
        assert login.status_code == 200
        nonce = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        logged = page.post("/ui/login", data={"key": site.tokens["admin"], "csrf": nonce})
        assert logged.status_code == 303 and logged.headers["location"] == "/ui/list"
        assert page.get("/ui/list").status_code == 200


async def burst(url: str, key: str, ids: list) -> list[tuple[int, float, httpx.Response]]:
    """BURST scoring requests at once (each a few hundred customers with reasons, so they
    overlap): (status, seconds, response) each."""
    headers = {"Authorization": f"Bearer {key}"}

    async def timed(client):
        started = time.perf_counter()
        response = await client.post(
            "/v1/score", json={"customer_ids": ids, "explain": True}, headers=headers
        )
        return response.status_code, time.perf_counter() - started, response

    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(timed(client) for _ in range(BURST)))


def test_a_burst_past_the_limit_is_turned_away_by_nginx_at_once(proxy, site):
    ids = [int(i) for i in site.scores()["customer_id"][:300]]
    before, shed_before = worker_pids(site), shed_by_the_service(site)
    answers = asyncio.run(burst(proxy.url, site.tokens["crm"], ids))

    served = [a for a in answers if a[0] == 200]
    turned = [a for a in answers if a[0] == 503]
    assert len(served) + len(turned) == BURST, [a[0] for a in answers]
    assert served and turned, f"{len(served)} served, {len(turned)} turned away"
    for _, _, response in served:
        assert len(response.json()["results"]) == len(ids)
    for _, _, response in turned:
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["status"] == 503 and "capacity" in error["message"]
        assert error["problems"] == [] and re.fullmatch(r"[0-9a-f]{32}", error["request_id"])
    # nginx's own: each request id is in its access log as turned away by the limit, and the
    # workers turned none away (they never saw them)
    time.sleep(1.5)  # the access log is flushed every second
    log = proxy.log("access.log")
    for _, _, response in turned:
        assert re.search(
            rf"\" 503 .* id={response.json()['error']['request_id']} limit=REJECTED", log
        )
    assert shed_by_the_service(site) == shed_before
    # generous: nginx answers in well under a millisecond; the bound is there to tell "at once"
    # from "after queueing for a served request" on two shared cores, not to time anything
    assert max(seconds for _, seconds, _ in turned) < 0.5

    assert worker_pids(site) == before
    for path in ("/livez", "/readyz"):
        assert httpx.get(proxy.url + path, timeout=10).status_code == 200


def test_health_checks_are_never_turned_away(proxy, site):
    """With every slot taken, /readyz still answers through the proxy."""

    async def scenario():
        ids = [int(i) for i in site.scores()["customer_id"][:300]]
        score = asyncio.ensure_future(burst(proxy.url, site.tokens["crm"], ids))
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            admin = {"Authorization": f"Bearer {site.tokens['admin']}"}  # /metrics needs a key
            health = [
                (await client.get(p, headers=admin)).status_code
                for p in ("/readyz", "/livez", "/metrics")
            ]
        await score
        return health

    assert asyncio.run(scenario()) == [200, 200, 200]


def test_the_proxy_caps_bodies_and_paces_logins(proxy):
    host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (33 * 2**20)
        )
        answer = raw.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413") and '"status": 413' in answer

    async def logins():
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/ui/login", data={"key": "guess", "csrf": "x"}) for _ in range(30))
            )

    answers = asyncio.run(logins())
    paced = [r for r in answers if r.status_code == 429]
    assert paced and len(paced) < 30, [r.status_code for r in answers]
    assert all(
        r.headers["retry-after"] == "5" and r.json()["error"]["status"] == 429 for r in paced
    )


def test_a_slow_sender_is_cut_off_without_an_answer(proxy):
    host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
    with socket.create_connection((host, port), timeout=15) as raw:
        raw.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        started = time.perf_counter()
        assert raw.recv(4096) == b""  # closed: nothing answered
        waited = time.perf_counter() - started
    assert 4 < waited < 8, waited
