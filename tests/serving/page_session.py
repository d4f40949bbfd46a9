"""The RM page as a script meets it (no browser): log in with a key, read a form's CSRF token."""

from __future__ import annotations

import re

import httpx


def form_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def log_in(url: str, token: str, headers: dict | None = None) -> httpx.Client:
    """A client holding a page session of ``token`` (its cookie: ``client.cookies``)."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=60, headers=headers)
    page = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": form_token(page.text), "key": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/list", answer.text
    return client


def copied(url: str, session: str) -> httpx.Client:
    """Another client (another browser) holding a copy of a session cookie."""
    return httpx.Client(
        base_url=url,
        follow_redirects=False,
        timeout=60,
        headers={"Cookie": f"retain_session={session}"},
    )
