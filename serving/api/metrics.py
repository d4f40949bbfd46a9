"""The service's Prometheus metrics: requests by route template, behind a key.

BentoML's own metrics label every request by its raw path (``/v1/customers/30``): customer ids
end up on an open page, and a thousand random paths add a thousand label sets. The service
turns them off (``metrics={"enabled": False}`` on the BentoML service, which also drops its
``/metrics`` route) and counts requests here instead, labelled by what cannot grow or name
anyone: the route's template (``/v1/customers/{customer_id}``; ``unmatched`` for a path no
route serves), the method (``OTHER`` beyond the usual ones) and the status code.
``/metrics`` is an API route: a ``metrics`` or ``admin`` key reads it (a scraper's key reads
no customer), others get 401/403.

The workers are separate processes: each writes its counts where BentoML's arbiter points
``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` adds up every worker's (the same directory
holds the admission gate's ``retain_requests_shed_total``).
"""

from __future__ import annotations

import os
import time

from serving.api.access import route_template

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class RouteMetrics:
    """ASGI middleware around the whole service: one count and one duration per request."""

    def __init__(self, app) -> None:
        self.app = app
        self._requests = None
        self._seconds = None

    def _instruments(self):
        if self._requests is None:
            # imported on first use: by then the worker's multiprocess directory is set
            import prometheus_client

            labels = ["route", "method", "status"]
            self._requests = prometheus_client.Counter(
                "retain_http_requests", "HTTP requests by route template", labels
            )
            self._seconds = prometheus_client.Histogram(
                "retain_http_request_duration_seconds",
                "Time to answer, by route template",
                ["route", "method"],
            )
        return self._requests, self._seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def counted_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        finally:
            route = route_template(scope) or UNMATCHED
            method = scope.get("method") if scope.get("method") in METHODS else "OTHER"
            requests, seconds = self._instruments()
            requests.labels(route=route, method=method, status=str(status)).inc()
            seconds.labels(route=route, method=method).observe(time.perf_counter() - started)


def exposition() -> tuple[bytes, str]:
    """Every worker's metrics in Prometheus' text format, and its media type."""
    import prometheus_client
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:  # one process (a test's app): its own registry
        registry = prometheus_client.REGISTRY
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
