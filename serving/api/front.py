"""What every answer of the service carries, and what of BentoML's it never serves.

:class:`SecurityHeaders` (around the whole service: API, page, health routes) adds to every
answer a Content-Security-Policy that allows nothing from elsewhere and no framing, the older
``X-Frame-Options``, ``nosniff``, ``Referrer-Policy: no-referrer`` and ``Cache-Control:
no-store`` (pages, lists, downloads and API answers hold customer data: no cache, shared or
private, keeps them), and drops ``ETag``/``Last-Modified`` (a CSV or XLSX download would get
them). Over TLS (the scheme, or ``X-Forwarded-Proto: https`` from the proxy in front) it adds
``Strict-Transport-Security``.

:class:`OwnFront` answers ``/`` itself (a redirect to the RM page) and hides BentoML's own
pages: its index at ``/`` loads a third-party analytics script on the page's origin, and
``/docs.json``, ``/schema.json`` and ``/static_content`` describe BentoML (and its version)
rather than this API, whose spec is ``/docs`` and ``/openapi.json``.

:class:`OneLine` keeps a log record on one line: a path is the caller's text, and a newline in
it (``%0A``) would otherwise start a forged line in the service log.
"""

from __future__ import annotations

import logging

from serving.api.guard import refuse

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")
REPLACED = {name for name, _ in HEADERS} | {b"etag", b"last-modified", b"server"}
HIDDEN = frozenset({"/docs.json", "/schema.json"})
HIDDEN_UNDER = "/static_content/"


def over_tls(scope) -> bool:
    """Whether the caller reached the service over TLS: directly, or through the proxy in
    front (``X-Forwarded-Proto: https``)."""
    if scope.get("scheme") == "https":
        return True
    forwarded = dict(scope.get("headers", [])).get(b"x-forwarded-proto", b"")
    return forwarded.split(b",")[0].strip().lower() == b"https"


class SecurityHeaders:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [*HEADERS, HSTS] if over_tls(scope) else HEADERS

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in REPLACED]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class OwnFront:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif path == "/":
            await self._root(scope, send)
        elif path in HIDDEN or (path + "/").startswith(HIDDEN_UNDER):
            await refuse(send, 404, "not found")
        else:
            await self.app(scope, receive, send)

    async def _root(self, scope, send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await refuse(send, 405, "method not allowed", [(b"allow", b"GET, HEAD")])
            return
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", b"/ui/"), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class OneLine(logging.Filter):
    """Escapes control characters in a record's message (``\\n`` for a newline)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(ord(c) < 32 or ord(c) == 127 for c in message):
            record.msg = "".join(
                c if 32 <= ord(c) != 127 else c.encode("unicode_escape").decode() for c in message
            )
            record.args = None
        return True
