"""What the service shows a stranger and an RM beyond the data routes (issue 19): /metrics
behind a key and by route template, the security headers on every page and download, BentoML's
own pages not served, one log line per request, page errors as pages, and an RM key shown no
sensitive feature."""

from __future__ import annotations

import secrets
import time
from contextlib import closing

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.page_session import form_token, log_in
from tests.serving.service_process import add_key


@pytest.fixture(scope="module")
def scraper(site) -> str:
    return add_key(site.keys, site.env, "--role", "metrics", "--name", "scraper-exposure")


@pytest.fixture(scope="module")
def page(site):
    """An rm's page session and a customer of its book, and one of another book."""
    scores = site.scores()
    rm, other = site.books[0], site.books[1]
    mine = int(scores.loc[scores["rm_id"].astype(str) == rm, "customer_id"].iloc[0])
    theirs = int(scores.loc[scores["rm_id"].astype(str) == other, "customer_id"].iloc[0])
    with closing(log_in(site.url, site.tokens[rm])) as client:
        yield client, rm, mine, theirs


def series(text: str) -> set[tuple]:
    """Every (sample name, labels) of a metrics page: what grows when labels are unbounded."""
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_a_key_and_never_name_a_customer_or_a_raw_path(site, scraper, page):
    _, rm, mine, theirs = page
    assert site.call("GET", "/metrics").status_code == 401
    assert site.call("GET", "/metrics", rm).status_code == 403
    read = site.call("GET", f"/v1/customers/{mine}", rm)
    assert (
        read.status_code == 200
        and site.call("GET", f"/v1/customers/{theirs}", rm).status_code == 403
    )

    def strangers(count: int) -> list[str]:
        tokens = [secrets.token_hex(6) for _ in range(count)]
        with httpx.Client(base_url=site.url, timeout=30) as client:
            for i, token in enumerate(tokens):
                path = (f"/{token}", f"/v1/customers/{token}", f"/ui/{token}/x")[i % 3]
                client.request(("GET", "POST")[i % 2], path)
        return tokens

    strangers(6)  # every kind of stranger's request once: its label set exists from here on
    headers = {"Authorization": f"Bearer {scraper}"}
    httpx.get(site.url + "/metrics", headers=headers, timeout=30)  # and a scrape's
    before = httpx.get(site.url + "/metrics", headers=headers, timeout=30)
    assert before.status_code == 200, before.text
    tokens = strangers(1000)
    after = httpx.get(site.url + "/metrics", headers=headers, timeout=30).text
    print(f"/metrics: {len(before.text):,} bytes before 1,000 random paths, {len(after):,} after")
    assert series(after) == series(before.text)  # no label set added by 1,000 new paths
    assert len(after) < len(before.text) + 2_000
    routes = {dict(labels).get("route") for _, labels in series(after) if "route" in dict(labels)}
    assert {"/v1/customers/{customer_id}", "/metrics", "unmatched"} <= routes
    assert not any(str(mine) in r or str(theirs) in r for r in routes), routes
    assert not any(token in after for token in tokens)


def security_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, where
    assert "http" not in csp and "*" not in csp, (where, csp)  # nothing from elsewhere
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "no-referrer", where
    assert response.headers.get("cache-control") == "no-store", where
    assert "etag" not in response.headers and "last-modified" not in response.headers, where


def test_every_page_download_and_answer_carries_the_security_headers(site, page):
    client, rm, mine, theirs = page
    answers = [
        client.get("/ui/login"),
        client.get("/ui/list?lang=en"),
        client.get("/ui/list?kind=growth"),
        client.get(f"/ui/customers/{mine}"),
        client.get(f"/ui/customers/{theirs}"),  # the 403 page
        client.get(f"/ui/lists/{rm}.csv"),
        client.get(f"/ui/lists/{rm}.xlsx"),
        client.get("/ui/page.css"),
        site.call("POST", "/v1/retention_list", rm, json={"rm_id": rm}),
        site.call("GET", f"/v1/customers/{mine}", rm),
        site.call("GET", "/v1/customers/1"),  # the 401
        site.call("GET", "/docs"),
        site.call("GET", "/livez"),
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 200, 200, 200, 403, 200, 200, 200, 200, 200, 401, 200, 200]
    for answer in answers:
        security_headers(answer)
    for html in (a.text for a in answers[:5]):  # the CSP allows no inline style or script
        assert "<script" not in html and "<style" not in html and " style=" not in html


def test_cookies_are_secure_behind_tls_only(site):
    token = site.tokens[site.books[0]]
    for forwarded in (None, "https"):
        headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
        with httpx.Client(base_url=site.url, headers=headers, timeout=60) as client:
            form = client.get("/ui/login")
            login = client.post(
                "/ui/login",
                data={"csrf": form_token(form.text), "key": token},
                headers={"Cookie": f"retain_login={form.cookies['retain_login']}"},
            )
        assert login.status_code == 303, login.text
        cookies = form.headers.get_list("set-cookie") + login.headers.get_list("set-cookie")
        assert any(c.startswith("retain_session=") for c in cookies)
        secure = ["; secure" in c.lower() for c in cookies]
        assert all(secure) if forwarded else not any(secure), cookies
        assert ("strict-transport-security" in login.headers) == bool(forwarded)


def test_a_metrics_key_cannot_log_in_to_the_page(site, scraper):
    with closing(httpx.Client(base_url=site.url, timeout=60)) as browser:
        form = browser.get("/ui/login?lang=en")
        answer = browser.post("/ui/login", data={"csrf": form_token(form.text), "key": scraper})
    assert answer.status_code == 401 and "cannot log in" in answer.text
    assert "retain_session" not in answer.cookies


def test_bentomls_own_pages_are_not_served(site):
    root = site.call("GET", "/")
    assert root.status_code == 303 and root.headers["location"] == "/ui/"
    assert site.call("POST", "/").status_code == 405
    for path in ("/docs.json", "/schema.json", "/static_content/index.css"):
        answer = site.call("GET", path)
        assert answer.status_code == 404 and "bentoml" not in answer.text.lower(), path
    spec = site.call("GET", "/openapi.json").text.lower()
    assert "bentoml" not in spec


def test_a_newline_in_a_path_forges_no_line_of_the_service_log(site):
    forged = "2099-01-01T00:00:00+0000 [INFO] [entry_service:retain:1] forged by a caller"
    path = "/v1/x%0A" + forged.replace(" ", "%20")
    assert site.call("GET", path).status_code == 404
    deadline = time.monotonic() + 10
    while True:  # the access line is written after the answer is sent: wait for it
        lines = site.service.log.read_text(errors="replace").splitlines()
        logged = any("forged" in line and "\\n" in line for line in lines)  # logged, escaped
        if logged or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert logged
    assert not any(line.startswith("2099-01-01") for line in lines)


def test_page_errors_are_pages_that_echo_no_input(page):
    client, *_ = page
    for path in ("/ui/list?kind=%3Cb%3Ebogus", "/ui/lists/x.pdf", "/ui/list?order=sideways"):
        answer = client.get(path)
        assert answer.status_code == 422, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "bogus" not in answer.text and "sideways" not in answer.text
        assert '"detail"' not in answer.text and "<b>" not in answer.text


def test_the_page_refuses_a_note_over_the_limit_and_names_it(site, page):
    client, rm, mine, _ = page
    form = client.get(f"/ui/customers/{mine}?lang=en")
    fields = {
        "csrf": form_token(form.text),
        "channel": "call",
        "reached": "yes",
        "result": "stays",
    }
    fields["request_id"] = "long-note-1"
    answer = client.post(f"/ui/customers/{mine}/outcomes", data={**fields, "note": "x" * 501})
    assert answer.status_code == 422 and "500" in answer.text, answer.text[-400:]
    stored = site.call("GET", f"/v1/outcomes?customer_id={mine}", rm).json()["outcomes"]
    assert "long-note-1" not in [o["request_id"] for o in stored]


def test_an_rm_key_is_not_shown_sensitive_features(site, page):
    from features.catalog import catalog

    _, rm, mine, _ = page
    sensitive = {name for name, entry in catalog().items() if entry.sensitive}
    to_crm = site.call("GET", f"/v1/customers/{mine}", "crm").json()["features"]
    to_rm = site.call("GET", f"/v1/customers/{mine}", rm).json()["features"]
    assert sensitive & set(to_crm)  # the models use them: there is something to hide
    assert not sensitive & set(to_rm)
    assert set(to_rm) == set(to_crm) - sensitive
