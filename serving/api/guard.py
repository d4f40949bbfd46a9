"""ASGI gates in front of the routes: who is asking before anything else, and bodies of the
right kind, size and speed.

- :class:`KeyFirst` (outermost on the API): a request for a data route must show a known key
  in its headers before it may wait for a slot (``serving.api.shedding``) or send a byte of its
  body — otherwise 401 at once, the connection closed, the body never read, and a rate-limited
  audit line (``refused``) says where from and why. A stranger holds no slot, however slowly it
  sends. The key found is left in ``scope["state"]["key"]`` for the request's audit line.
- :class:`BodyGuard`: a body not of the accepted media type (a pickle, a multipart form,
  anything) is refused with 415 before a byte of it is read; a body over the cap (declared or
  streamed) gets 413; a body that has not arrived ``BODY_SECONDS`` after the request started
  gets 408 and the connection is closed, so a slow sender gives its slot back. Nothing here
  parses a body, so nothing here can execute one.

Only a request some route serves (path and method) is gated: any other is left to the router,
whose 404 or 405 (with ``Allow``) is the truer answer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

from starlette.routing import Match

MAX_BODY_BYTES = 32 * 2**20  # 10,000 feature records of ~60 numbers fit with room to spare
MAX_FORM_BYTES = 64 * 2**10  # the page's forms: a key, a note of 500 characters, a few fields
BODY_SECONDS = 5.0  # a body that takes longer is a slow sender, not a slow network
CLOSE = [(b"connection", b"close")]
# never gated by key: the spec, for integrators reading it before they have one
OPEN_PATHS = frozenset({"/docs", "/openapi.json"})


class KeyFirst:
    """401 before the body or a slot for a request to a data route without a known key.

    ``identify(authorization header) -> key or None`` is the keys of the worker's state;
    ``refused(scope, authorization header)`` is told of each refusal (for the audit log)."""

    def __init__(
        self,
        app,
        identify: Callable[[str | None], object | None],
        refused: Callable[[dict, str | None], None] | None = None,
    ) -> None:
        self.app = app
        self.identify = identify
        self.refused = refused

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or not _served(scope):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        authorization = header.decode("latin-1") if header else None
        key = self.identify(authorization)
        if key is None:
            state = scope.setdefault("state", {})
            state.setdefault("request_id", uuid.uuid4().hex)  # the answer's and the line's
            if self.refused is not None:
                self.refused(scope, authorization)
            message = "missing or unknown API key (send Authorization: Bearer <key>)"
            headers = [(b"www-authenticate", b"Bearer"), *CLOSE]
            await refuse(send, 401, message, headers, scope)
            return
        scope.setdefault("state", {})["key"] = key
        await self.app(scope, receive, send)


class BodyGuard:
    """Bodies of ``media`` only, at most ``max_bytes``, complete within ``seconds``."""

    def __init__(
        self,
        app,
        media: str = "application/json",
        max_bytes: int = MAX_BODY_BYTES,
        seconds: float = BODY_SECONDS,
    ) -> None:
        self.app, self.media, self.max_bytes, self.seconds = app, media, max_bytes, seconds

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or not (_served(scope))
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != self.media:
            await refuse(send, 415, f"request bodies must be {self.media}, not {media!r}")
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await refuse(send, 413, f"request body over {_size(self.max_bytes)}", CLOSE)
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope, receive, send) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        seen, complete = 0, False
        refusal: tuple[int, str] | None = None

        async def counted():
            nonlocal seen, complete, refusal
            if complete:  # after the body: only a disconnect can come, whenever it comes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                refusal = (408, f"the request body did not arrive within {self.seconds:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.max_bytes:
                    refusal = (413, f"request body over {_size(self.max_bytes)}")
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def guarded_send(message):
            nonlocal started
            if refusal is not None and not started:
                started = True
                await refuse(send, *refusal, CLOSE)
                return
            if refusal is not None:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, guarded_send)


def _size(limit: int) -> str:
    return f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 2**10} KB"


def _served(scope) -> bool:
    """Whether a route of the app (set in the scope by Starlette) serves this path and method."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", None)
    if routes is None:  # not behind a Starlette app: gate everything
        return True
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


async def refuse(send, status: int, message: str, headers=(), scope=None) -> None:
    """Answer in the API's error envelope (with the request's id when ``scope`` has one)."""
    known = (scope or {}).get("state", {}).get("request_id")
    body = json.dumps(
        {
            "error": {
                "status": status,
                "message": message,
                "problems": [],
                "request_id": known or uuid.uuid4().hex,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class JsonErrors:
    """Outermost: an error the framework answers in plain text (a path no route matches, say
    one with a newline in it) is re-sent in the JSON error envelope, as the spec promises."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced: dict = {}

        async def rewriting_send(message):
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                media = headers.get(b"content-type", b"").decode("latin-1")
                if message["status"] >= 400 and media.startswith("text/plain"):
                    replaced["status"] = message["status"]
                    replaced["headers"] = [
                        (k, v) for k, v in message.get("headers", []) if k.lower() == b"allow"
                    ]
                    return
            elif message["type"] == "http.response.body" and replaced:
                if not message.get("more_body", False):
                    text = {404: "not found", 405: "method not allowed"}.get(
                        replaced["status"], "request refused"
                    )
                    await refuse(send, replaced["status"], text, replaced["headers"])
                return
            await send(message)

        await self.app(scope, receive, rewriting_send)
