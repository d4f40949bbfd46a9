"""Who may see what, and the one audit writer — for the API and the RM page alike
(docs/design.md §8).

An ``rm`` key sees the customers of its own book (the RM who looks after them as of the
scored cutoff) and pulls only its own lists; ``crm`` and ``admin`` keys see every customer and
every list; a ``metrics`` key sees none (it reads ``/metrics`` only). A customer the snapshot
does not hold is outside every RM's book, so an RM cannot tell an unknown id from somebody
else's customer. An rm key is also not shown the sensitive features of the catalog (age, city
tier): it gets what its page shows.

Audit: a handler only *notes* what a request read or tried (:func:`note`: customer ids, list
id, models); :class:`Audited`, around the API and the page, writes the request's one line when
its answer is complete — whatever the answer was (200, 403, 404, 409, 422, 503, 500) — with
the key, role, route, status and those facts (:func:`audit`). Requests without a known key
never reach a route: the gate that refuses them writes a rate-limited line (:func:`refused`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd
from starlette.routing import Match, Mount

from features.catalog import catalog
from serving.api.auth import ApiKey, AuditLog

SEES_ALL = frozenset({"crm", "admin"})  # every customer and every list
READS_METRICS = frozenset({"admin", "metrics"})
MAX_LOGGED_ID = 64  # an attempted id is logged as sent, cut to this many characters


@dataclass(frozen=True)
class Reach:
    """What a key may do with one asked-for customer id."""

    customer: Any  # the id as the snapshot keeps it, or None when it cannot be one of them
    owner: str | None  # the customer's RM as of the cutoff
    exists: bool  # the snapshot holds the customer
    allowed: bool  # the key may see it


def reach(key: ApiKey, snapshot, customer_id) -> Reach:
    """Whether ``key`` may see ``customer_id`` of ``snapshot`` (a ``Snapshot``)."""
    wanted = snapshot.key(customer_id)
    exists = wanted is not None and wanted in snapshot.scores.index
    owner = snapshot.owner(wanted) if exists else None
    allowed = key.role in SEES_ALL or (
        key.role == "rm" and owner is not None and owner == key.rm_id
    )
    return Reach(wanted, owner, exists, allowed)


def reaches_all(key: ApiKey, snapshot, customer_ids: list) -> bool:
    """Whether ``key`` may see every one of ``customer_ids`` (ids as the snapshot keeps them;
    an id the snapshot does not hold is outside every book)."""
    if key.role in SEES_ALL:
        return True
    if key.role != "rm" or snapshot is None:
        return False
    owners = snapshot.rm_ids.reindex(customer_ids)
    return bool((owners == key.rm_id).fillna(False).all())


def may_pull_list(key: ApiKey, list_id: str | None) -> bool:
    """Whether ``key`` may read the list of ``list_id`` (an RM its own only)."""
    return key.role in SEES_ALL or (key.role == "rm" and list_id == key.rm_id)


@cache
def _sensitive() -> frozenset[str]:
    return frozenset(name for name, entry in catalog().items() if entry.sensitive)


def shown_features(key: ApiKey, names: list[str]) -> list[str]:
    """The features of ``names`` a key is shown with a customer: an rm key not the catalog's
    sensitive ones (demographics; never a reason either), crm and admin all."""
    return names if key.role in SEES_ALL else [n for n in names if n not in _sensitive()]


def note(request, **facts) -> None:
    """Facts for this request's audit line: ``customer_ids`` read or attempted, ``list_id``,
    ``models``, ``endpoint`` (the short name), anything else worth a field."""
    state = request.scope.setdefault("state", {})
    state.setdefault("audit", {}).update(facts)


def audit(
    log: AuditLog,
    key: ApiKey,
    endpoint: str,
    request_id: str,
    status: int = 200,
    customers: int | None = None,
    models: dict[str, str] | None = None,
    customer_ids: list | None = None,
    **extra,
) -> None:
    """The one audit line of a request, API or page: who (key name, role, RM book), what
    (endpoint, the customer ids read or attempted and how many, the list, which models), the
    answer's status and the request id."""
    ids = [_loggable(c) for c in customer_ids] if customer_ids is not None else []
    log.write(
        key=key.name,
        role=key.role,
        endpoint=endpoint,
        rm_book=key.rm_id,
        customers=len(ids) if customers is None else customers,
        customer_ids=ids,
        models=models,
        request_id=request_id,
        status=status,
        **{k: v for k, v in extra.items() if not (isinstance(v, float) and pd.isna(v))},
    )


def _loggable(customer_id):
    """An id as JSON keeps it: numbers as numbers, anything else as (cut) text."""
    if hasattr(customer_id, "item"):
        customer_id = customer_id.item()
    if isinstance(customer_id, int) and not isinstance(customer_id, bool):
        return customer_id
    return str(customer_id)[:MAX_LOGGED_ID]


def refused(log: AuditLog | None, scope, kind: str, details: Callable[[], dict]) -> None:
    """The rate-limited line of a refusal before any key was known (``kind``: ``refused`` for
    the API's 401, ``login_failed`` for the page): where from, which route, and why."""
    if log is None:
        return
    client = scope.get("client")

    def line() -> dict:
        route = route_template(scope) or "unmatched"
        return {
            "endpoint": _endpoint(route),
            "route": route,
            "method": scope.get("method"),
            "client": client[0] if client else None,
            "status": 401,
            "request_id": scope.get("state", {}).get("request_id"),
            **details(),
        }

    log.write_limited(kind, line)


def route_template(scope) -> str | None:
    """The template of the route that served (or will serve) a request, never its raw path:
    ``/v1/customers/{customer_id}``."""
    route = scope.get("route")
    if route is not None and not isinstance(route, Mount):
        return route.path
    app = scope.get("app")  # the router has not run yet (a gate refused): match its routes
    routes = list(getattr(getattr(app, "router", None), "routes", []))
    while routes:
        candidate = routes.pop(0)
        if inner := getattr(candidate, "original_router", None):  # an included router's
            routes += inner.routes
        elif isinstance(candidate, Mount) or not getattr(candidate, "path", None):
            continue
        elif candidate.matches(scope)[0] == Match.FULL:
            return candidate.path
    return None


class Audited:
    """ASGI middleware: one audit line per request a key or a page session made (the key is
    in ``scope["state"]["key"]``, put there by the API's key gate or the page's session),
    written just before the answer's last byte is sent — or, when the handler failed, as a
    500. ``log()`` is the worker's audit log."""

    def __init__(self, app, log: Callable[[], AuditLog | None]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state.setdefault("request_id", uuid.uuid4().hex)  # the answer carries the same id
        status, done = 500, False

        async def audited_send(message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                if not done:
                    done = True
                    self._write(scope, status)
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        finally:
            if not done:
                self._write(scope, status)

    def _write(self, scope, status: int) -> None:
        state = scope.get("state", {})
        key, log = state.get("key"), self.log()
        if key is None or log is None:
            return
        facts = dict(state.get("audit", {}))
        route = route_template(scope) or "unmatched"
        if "customer_ids" not in facts:  # a GET names its customer in the path or query
            asked = (scope.get("path_params") or {}).get("customer_id")
            facts["customer_ids"] = [asked] if asked is not None else []
        endpoint = facts.pop("endpoint", None) or _endpoint(route)
        client = scope.get("client")
        audit(
            log,
            key,
            endpoint,
            state["request_id"],
            status,
            route=route,
            method=scope.get("method"),
            client=client[0] if client else None,
            **facts,
        )


def _endpoint(route: str) -> str:
    """The short name of a route: ``/v1/customers/{customer_id}`` → ``/customers``."""
    return route.removeprefix("/v1").split("/{", 1)[0] or "/"
