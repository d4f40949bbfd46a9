"""Admission control: each worker takes on only the work it can finish in time, and says so
at once when it cannot.

A worker serves at most ``in_flight`` API requests at a time. A request that finds every slot
taken waits for one in a short queue — at most ``queue`` requests, each for at most
``queue_ms`` — and is otherwise answered at once with 503, ``Retry-After`` and the API's error
envelope, before its body is read. So under any load an admitted request waits at most
``queue_ms`` plus the work of the requests ahead of it, the rejected ones are told within
milliseconds, and nothing piles up until the 30 s timeout (which is what made the service
collapse at twice its capacity: with 16 requests at once per worker sharing one interpreter,
each took 16 times as long, and the backlog grew in the sockets faster than it was served).

Settings (environment of `retain serve`, per worker): ``RETAIN_MAX_IN_FLIGHT`` (default 2),
``RETAIN_MAX_QUEUE`` (4), ``RETAIN_QUEUE_MS`` (25), ``RETAIN_RETRY_AFTER`` seconds (1).
Health and readiness (BentoML's routes) and ``/metrics`` are outside this gate: never shed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass

from serving.api.guard import OPEN_PATHS, refuse

log = logging.getLogger("retain.service")

# the spec is cheap, and an integrator reading it under load should still get it
NEVER_SHED = OPEN_PATHS | {"/metrics"}
_ENV = {
    "in_flight": "RETAIN_MAX_IN_FLIGHT",
    "queue": "RETAIN_MAX_QUEUE",
    "queue_ms": "RETAIN_QUEUE_MS",
    "retry_after": "RETAIN_RETRY_AFTER",
}
LOG_EVERY_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    """Per worker: requests served at once, requests waiting, how long one may wait (ms), and
    the seconds a rejected caller is told to wait before retrying."""

    in_flight: int = 2  # two: one request's parsing overlaps the other's scoring
    queue: int = 4
    queue_ms: int = 25  # a request turned away after waiting waited this long: keep it short
    retry_after: int = 1

    @classmethod
    def from_env(cls, environ=None) -> Limits:
        environ = os.environ if environ is None else environ
        values = {}
        for name, variable in _ENV.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            least = 1 if name in ("in_flight", "retry_after") else 0
            if not text.isdigit() or int(text) < least:
                raise ValueError(f"{variable}={text!r}: expected a whole number ≥ {least}")
            values[name] = int(text)
        return cls(**values)

    @property
    def most_at_once(self) -> int:
        """Requests a worker holds at most (served and waiting)."""
        return self.in_flight + self.queue


class Admission:
    """ASGI middleware in front of the API routes; one per worker (one event loop)."""

    def __init__(self, app, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits.from_env()
        self.active = 0
        self.waiting: deque[asyncio.Future] = deque()
        self.shed = {"queue_full": 0, "queue_timeout": 0}
        self._counter = None
        self._logged_at, self._logged = time.monotonic(), 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        why = await self._admit()
        if why is not None:
            self._count(why)
            message = (
                "the service is at capacity and did not take this request on; "
                f"retry after {self.limits.retry_after} s"
            )
            retry = [(b"retry-after", b"%d" % self.limits.retry_after)]
            await refuse(send, 503, message, retry, scope)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _admit(self) -> str | None:
        """None once the request holds a slot, else why it was turned away."""
        if self.active < self.limits.in_flight and not self.waiting:
            self.active += 1
            return None
        if len(self.waiting) >= self.limits.queue or self.limits.queue_ms == 0:
            return "queue_full"
        loop = asyncio.get_running_loop()
        ticket = loop.create_future()
        self.waiting.append(ticket)
        timer = loop.call_later(self.limits.queue_ms / 1000, _settle, ticket, False)
        try:
            granted = await ticket
        except asyncio.CancelledError:  # the caller went away (or the framework's timeout)
            if ticket.done() and not ticket.cancelled() and ticket.result():
                self._release()
            raise
        finally:
            timer.cancel()
            with suppress(ValueError):  # still queued when its time ran out
                self.waiting.remove(ticket)
        return None if granted else "queue_timeout"

    def _release(self) -> None:
        """Hand the slot to the longest-waiting request still waiting, else free it."""
        while self.waiting:
            ticket = self.waiting.popleft()
            if not ticket.done():
                ticket.set_result(True)
                return
        self.active -= 1

    def _count(self, why: str) -> None:
        self.shed[why] += 1
        if self._counter is None:
            # imported here, not at module import: BentoML's worker points prometheus_client at
            # its multiprocess directory after the service module is imported
            import prometheus_client

            self._counter = prometheus_client.Counter(
                "retain_requests_shed",
                "API requests answered 503 because the worker was at capacity",
                ["reason"],
            )
        self._counter.labels(reason=why).inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:  # one line per period, not per request
            total = sum(self.shed.values())
            log.warning(
                "at capacity: %d request(s) answered 503 in the last %.0f s (%s in flight, "
                "%s waiting; limits %s)",
                total - self._logged,
                now - self._logged_at,
                self.active,
                len(self.waiting),
                self.limits,
            )
            self._logged_at, self._logged = now, total


def _settle(ticket: asyncio.Future, granted: bool) -> None:
    if not ticket.done():
        ticket.set_result(granted)
