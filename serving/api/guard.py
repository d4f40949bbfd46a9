"""An ASGI gate in front of the data routes: JSON bodies only, and never more than the cap.

A body that is not ``application/json`` (a pickle, a multipart form, anything) is refused with
415 before a byte of it is read; a body over ``MAX_BODY_BYTES`` (declared or streamed) gets
413. Nothing here parses the body, so nothing here can execute it. Only a request some route
serves (path and method) is gated: any other is left to the router, whose 404 or 405 (with
``Allow``) is the truer answer.
"""

from __future__ import annotations

import json
import uuid

from starlette.routing import Match

MAX_BODY_BYTES = 32 * 2**20  # 10,000 feature records of ~60 numbers fit with room to spare


class BodyGuard:
    def __init__(self, app) -> None:
        self.app = app

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
        if media != "application/json":
            await refuse(send, 415, f"request bodies must be application/json, not {media!r}")
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await refuse(send, 413, f"request body over {MAX_BODY_BYTES // 2**20} MB")
            return
        seen = 0
        too_big = False

        async def counted():
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    too_big = True
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def guarded_send(message):
            nonlocal started
            if too_big and not started:
                started = True
                await refuse(send, 413, f"request body over {MAX_BODY_BYTES // 2**20} MB")
                return
            if too_big:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, guarded_send)


def _served(scope) -> bool:
    """Whether a route of the app (set in the scope by Starlette) serves this path and method."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", None)
    if routes is None:  # not behind a Starlette app: gate everything
        return True
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


async def refuse(send, status: int, message: str, headers=()) -> None:
    body = json.dumps(
        {
            "error": {
                "status": status,
                "message": message,
                "problems": [],
                "request_id": uuid.uuid4().hex,
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
