"""The data routes' logic: authenticate, check, authorise, score, audit — in that order.

Status codes: 401 no or unknown key; 403 a role or RM book that does not cover the request
(the body names no customer); 404 no such customer or RM; 405 a method the path does not serve
(with ``Allow``); 413 more than 10,000 customers or a body over the cap; 415 a body that is not
JSON; 422 every invalid field with its row index; 429 too many requests at once (BentoML's own
cap, a backstop); 503 not ready, the outcome store unreachable, or the worker at capacity
(serving.shedding, with Retry-After).
"""

from __future__ import annotations

import logging
import sqlite3
import uuid

import numpy as np
import pandas as pd
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from serving.auth import ApiKey
from serving.outcomes import OutcomeStore
from serving.schemas import (
    MAX_CUSTOMERS,
    ErrorResponse,
    OutcomeRequest,
    Problem,
    RetentionListRequest,
    ScoreRequest,
    as_id,
    check_records,
    feature_record_schema,
)
from serving.state import ServingState, plain_id

log = logging.getLogger("retain.service")

Credentials = HTTPAuthorizationCredentials | None
_WHY = {
    401: "No or unknown API key.",
    403: "The key's role or RM book does not cover this.",
    404: "No such customer or RM in the scored snapshot.",
    405: "The path does not serve this method; `Allow` lists those it does.",
    413: "More than 10,000 customers, or a body over 32 MB.",
    415: "The body is not application/json.",
    422: "Invalid request: every problem with its field and row.",
    429: "Too many requests at once; retry later.",
    503: "Not ready (models not loaded and verified), the outcome store unreachable, or the "
    "worker at capacity (then with Retry-After).",
}
ALLOW = {"Allow": {"description": "The methods this path serves.", "schema": {"type": "string"}}}
RETRY = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (when the worker is at capacity).",
        "schema": {"type": "integer"},
    }
}
ERRORS = {
    code: {
        "model": ErrorResponse,
        "description": why,
        **({"headers": ALLOW} if code == 405 else {"headers": RETRY} if code == 503 else {}),
    }
    for code, why in _WHY.items()
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


def request_id(request: Request) -> str:
    if not hasattr(request.state, "request_id"):
        request.state.request_id = uuid.uuid4().hex
    return request.state.request_id


def error_response(
    request: Request, status: int, message: str, problems=(), headers=None
) -> JSONResponse:
    body = {
        "error": {
            "status": status,
            "message": message,
            "problems": [p.model_dump() for p in problems],
            "request_id": request_id(request),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request, exc.status, exc.message, exc.problems)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Pydantic's errors as (row, field, problem), once per field: ``customers.3.age.float``
    (one error per member of the value's type union) becomes row 3, field ``age``."""
    problems: dict[tuple, Problem] = {}
    for error in exc.errors():
        loc = [p for p in error.get("loc", ()) if p != "body"]
        row = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
        name = str(loc[2]) if row is not None and len(loc) > 2 else str(loc[0]) if loc else "body"
        problems.setdefault(
            (row, name), Problem(row=row, field=name, problem=error.get("msg", "invalid"))
        )
    return error_response(request, 422, "invalid request", list(problems.values()))


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Framework errors in our envelope; a body that cannot be parsed is an invalid request."""
    if exc.status_code == 400:
        problem = Problem(row=None, field="body", problem="not valid JSON (UTF-8)")
        return error_response(request, 422, "invalid request", [problem])
    headers = exc.headers
    if exc.status_code == 405:  # Starlette names only the first route of the path
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return error_response(request, exc.status_code, str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path."""
    methods: set[str] = set()
    routes = list(request.app.router.routes)
    while routes:
        route = routes.pop()
        if inner := getattr(route, "original_router", None):  # an included router's routes
            routes += inner.routes
        elif route.matches(request.scope)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    # a bug, never bad input: log the kind of error only (no customer data), answer generically
    log.error("request %s failed: %s", request_id(request), type(exc).__name__)
    return error_response(request, 500, "internal error")


def describe_feature_records(app, state: ServingState) -> None:
    """Let the app's spec describe ``/score``'s feature records exactly, once the served
    models (and so their features) are known; before that they stay generic objects."""
    generic = app.openapi

    def openapi() -> dict:
        spec = generic()
        schemas = spec["components"]["schemas"]
        if state.features and "FeatureRecord" not in schemas:
            schemas["FeatureRecord"] = feature_record_schema(state.features, state.nullable)
            customers = schemas["ScoreRequest"]["properties"]["customers"]
            customers["items"] = {"$ref": "#/components/schemas/FeatureRecord"}
        return spec

    app.openapi = openapi


async def openapi_spec(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def _authenticate(state: ServingState, credentials: Credentials) -> ApiKey:
    token = credentials.credentials if credentials else None
    key = state.keys.identify(f"Bearer {token}") if state.keys and token else None
    if key is None:
        raise ApiError(401, "missing or unknown API key (send Authorization: Bearer <key>)")
    if not state.ready:
        raise ApiError(503, "the service is not ready: its models are not loaded and verified")
    return key


def _audit(
    state, key: ApiKey, request: Request, endpoint: str, count: int, models, status=200, **extra
):
    state.audit.write(
        key=key.name,
        role=key.role,
        endpoint=endpoint,
        rm_book=key.rm_id,
        customers=count,
        models=models,
        request_id=request_id(request),
        status=status,
        **extra,
    )


def _deny(state, key: ApiKey, request: Request, endpoint: str, count: int, why: str):
    _audit(state, key, request, endpoint, count, None, 403)
    raise ApiError(403, why)


def score(
    state: ServingState, body: ScoreRequest, request: Request, credentials: Credentials
) -> dict:
    key = _authenticate(state, credentials)
    if (body.customers is None) == (body.customer_ids is None):
        raise ApiError(
            422,
            "give either customers or customer_ids",
            [
                Problem(
                    row=None, field="customers", problem="exactly one of customers, customer_ids"
                )
            ],
        )
    wanted = body.customers if body.customers is not None else body.customer_ids
    if len(wanted) > MAX_CUSTOMERS:
        raise ApiError(413, f"{len(wanted):,} customers in one request; at most {MAX_CUSTOMERS:,}")
    if not wanted:
        raise ApiError(
            422, "no customers", [Problem(row=None, field="customers", problem="at least one")]
        )
    if body.customers is not None:
        problems = check_records(body.customers, state.features, state.nullable)
        if problems:
            raise ApiError(422, f"{len(problems)} invalid field(s)", problems)
        for record in body.customers:
            record["customer_id"] = as_id(record["customer_id"])
        ids = [r["customer_id"] for r in body.customers]
    else:
        ids = list(body.customer_ids)
    if key.role == "rm":
        owners = state.snapshot.owner(ids) if state.snapshot else pd.Series([None] * len(ids))
        if not (owners == key.rm_id).fillna(False).all():
            _deny(
                state,
                key,
                request,
                "/score",
                len(ids),
                "an RM key may only score customers in its own book",
            )
    unknown: list[dict] = []
    if body.customers is not None:
        frame = pd.DataFrame.from_records(body.customers, columns=["customer_id", *state.features])
    else:
        frame, unknown = _snapshot_rows(state, ids)
    results = state.score(frame, body.explain) if len(frame) else []
    versions = state.models.versions
    _audit(state, key, request, "/score", len(results), versions, unknown=len(unknown))
    return {
        "results": results,
        "unknown": unknown,
        "models": versions,
        "request_id": request_id(request),
    }


def _snapshot_rows(state: ServingState, ids: list) -> tuple[pd.DataFrame, list[dict]]:
    """The snapshot's feature rows of the known ``ids`` (answered as asked), and the unknown
    ones as ``{"row", "customer_id", "problem"}``."""
    if state.snapshot is None:
        raise ApiError(
            422,
            "this service has no scored snapshot (retain serve --scores DIR)",
            [Problem(row=None, field="customer_ids", problem="no snapshot")],
        )
    snapshot = state.snapshot
    known = snapshot.features.index
    keys = [snapshot.key(cid) for cid in ids]
    kind = "integers" if snapshot.integer_ids else "strings"
    found = [key is not None and key in known for key in keys]
    unknown = [
        {
            "row": i,
            "customer_id": cid,
            "problem": f"not in the scored snapshot (this bank's ids are {kind})",
        }
        for i, (cid, ok) in enumerate(zip(ids, found, strict=True))
        if not ok
    ]
    wanted = [k for k, ok in zip(keys, found, strict=True) if ok]
    rows = snapshot.features.loc[wanted, state.features].reset_index()
    rows["customer_id"] = [c for c, ok in zip(ids, found, strict=True) if ok]  # as asked
    return rows.astype({c: "float64" for c in state.features}), unknown


def retention_list(
    state: ServingState, body: RetentionListRequest, request: Request, credentials: Credentials
) -> dict:
    """An RM's list: an rm key its own only; crm (delivering lists to RM workbenches) and admin
    any RM's."""
    key = _authenticate(state, credentials)
    if key.role == "rm" and key.rm_id != body.rm_id:
        _deny(
            state,
            key,
            request,
            "/retention_list",
            0,
            "an RM key may only pull its own retention list",
        )
    snapshot = _require_snapshot(state)
    rows = snapshot.retention_list(body.rm_id, body.k, body.lang)
    if rows.empty and len(snapshot.book(body.rm_id)) == 0 and key.role != "rm":
        raise ApiError(404, f"no RM {body.rm_id!r} with customers in the snapshot")
    entries = [
        {
            "rank": int(r.rank),
            "customer_id": plain_id(r.customer_id),
            "customer_name": str(r.customer_name),
            "tier": _opt(r.tier, str),
            "pyramid_level": _opt(r.pyramid_level, int),
            "p_churn": float(r.p_churn),
            "contribution_12m": float(r.contribution_12m),
            "expected_loss": float(r.expected_loss),
            "reasons": [t for t in (r.reason_1, r.reason_2, r.reason_3) if isinstance(t, str)],
            "next_best_offer": _opt(r.next_best_offer, str),
            "offer_propensity": _opt(r.offer_propensity, float),
            "action": str(r.action),
        }
        for r in rows.itertuples(index=False)
    ]
    _audit(state, key, request, "/retention_list", len(entries), snapshot.versions)
    return {
        "rm_id": body.rm_id,
        "cutoff": snapshot.cutoff,
        "entries": entries,
        "models": snapshot.versions,
        "request_id": request_id(request),
    }


def customer(
    state: ServingState, customer_id: str, request: Request, credentials: Credentials
) -> dict:
    key = _authenticate(state, credentials)
    snapshot = _require_snapshot(state)
    wanted = snapshot.key(customer_id)
    owner = snapshot.owner([wanted]).iloc[0] if wanted is not None else None
    if key.role == "rm" and (owner is None or pd.isna(owner) or owner != key.rm_id):
        _deny(state, key, request, "/customers", 1, "not a customer in this RM's book")
    if wanted is None or wanted not in snapshot.features.index:
        raise ApiError(404, "no such customer in the scored snapshot")
    customer_id = wanted
    frame, _ = _snapshot_rows(state, [customer_id])
    result = state.score(frame, explain_rows=True)[0]
    info = snapshot.scores.loc[customer_id]
    features = {name: _scalar(v) for name, v in frame.iloc[0].items() if name != "customer_id"}
    versions = state.models.versions
    _audit(state, key, request, "/customers", 1, versions, customer_id=plain_id(customer_id))
    return {
        "customer_id": customer_id,
        "cutoff": snapshot.cutoff,
        "rm_id": None if pd.isna(owner) else str(owner),
        "customer_name": str(info["customer_name"]),
        "result": result,
        "features": features,
        "models": versions,
        "request_id": request_id(request),
    }


def _book_customer(state: ServingState, key: ApiKey, request: Request, endpoint: str, customer_id):
    """The snapshot's id of a customer the key may act for, and its RM: 403 outside an rm
    key's book, 404 for an id the snapshot does not hold."""
    snapshot = _require_snapshot(state)
    wanted = snapshot.key(customer_id)
    owner = snapshot.owner([wanted]).iloc[0] if wanted is not None else None
    if key.role == "rm" and (owner is None or pd.isna(owner) or owner != key.rm_id):
        _deny(state, key, request, endpoint, 1, "not a customer in this RM's book")
    if wanted is None or wanted not in snapshot.features.index:
        raise ApiError(404, "no such customer in the scored snapshot")
    return plain_id(wanted), (None if pd.isna(owner) else str(owner))


def _store_errors():
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    try:
        import psycopg

        errors += (psycopg.Error,)
    except ImportError:  # PostgreSQL support not installed: SQLite only
        pass
    return errors


def record_outcome(
    state: ServingState,
    store: OutcomeStore,
    body: OutcomeRequest,
    request: Request,
    response: Response,
    credentials: Credentials,
) -> dict:
    """Store what a contact achieved (201), or answer a repeated ``request_id`` with the outcome
    stored the first time (200). Every write is audited."""
    key = _authenticate(state, credentials)
    customer_id, owner = _book_customer(state, key, request, "/outcomes", body.customer_id)
    try:
        outcome, created = store.record(
            request_id=body.request_id,
            customer_id=customer_id,
            rm_id=owner,
            channel=body.channel,
            reached=body.reached,
            result=body.result,
            next_step=body.next_step,
            note=body.note,
            recorded_by=key.name,
        )
    except _store_errors() as exc:
        log.error("outcome store failed: %s", type(exc).__name__)
        why = "the outcome store is unreachable; retry with the same request_id"
        raise ApiError(503, why) from exc
    response.status_code = 201 if created else 200
    _audit(
        state,
        key,
        request,
        "/outcomes",
        1,
        None,
        response.status_code,
        customer_id=customer_id,
        outcome_id=outcome.outcome_id,
        created=created,
    )
    return {"outcome": outcome.public(), "request_id": request_id(request)}


def customer_outcomes(
    state: ServingState,
    store: OutcomeStore,
    customer_id: str,
    request: Request,
    credentials: Credentials,
) -> dict:
    """A customer's outcomes, newest first (same rights as recording one)."""
    key = _authenticate(state, credentials)
    customer_id, _ = _book_customer(state, key, request, "/outcomes", customer_id)
    try:
        outcomes = store.for_customer(customer_id)
    except _store_errors() as exc:
        log.error("outcome store failed: %s", type(exc).__name__)
        raise ApiError(503, "the outcome store is unreachable") from exc
    _audit(state, key, request, "/outcomes", 1, None, customer_id=customer_id, read=True)
    return {
        "customer_id": customer_id,
        "outcomes": [o.public() for o in outcomes],
        "request_id": request_id(request),
    }


def _require_snapshot(state: ServingState):
    if state.snapshot is None:
        raise ApiError(404, "this service has no scored snapshot (retain serve --scores DIR)")
    return state.snapshot


def _opt(value, kind):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else kind(value)


def _scalar(value):
    return None if pd.isna(value) else float(value)
