"""The data routes' logic: authenticate, check, authorise, score, audit — in that order.

Status codes: 401 no or unknown key; 403 a role or RM book that does not cover the request
(the body names no customer); 404 no such customer or RM; 405 a method the path does not serve
(with ``Allow``); 413 more than 10,000 customers or a body over the cap; 415 a body that is not
JSON; 422 every invalid field with its row index; 429 too many requests at once (BentoML's own
cap, a backstop); 503 not ready, the outcome store unreachable, or the worker at capacity
(serving.api.shedding, with Retry-After).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid

import pandas as pd
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from features.catalog import Feature, catalog
from serving.answer import plain
from serving.api.access import may_pull_list, note, reach, reaches_all, shown_features
from serving.api.auth import ApiKey
from serving.api.schemas import (
    MAX_CUSTOMERS,
    SCORE_SHAPES,
    ErrorResponse,
    OutcomeRequest,
    Problem,
    RetentionListRequest,
    ScoreByIds,
    ScoreRecords,
    as_id,
    check_records,
    feature_record_schema,
)
from serving.api.state import ServingState, plain_id
from serving.outcomes import OutcomeConflict, OutcomeStore

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
CONFLICT = {
    "model": ErrorResponse,
    "description": "The request_id was used by this key before, for another customer or "
    "other content (a retry of the same outcome is answered 200).",
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
    """Pydantic's errors as (row, field, problem), once per field, the field named as the
    client sent it (``customer_ids[2]``) and the problem in words."""
    problems: dict[tuple, Problem] = {}
    for error in exc.errors():
        problem = _problem(error, exc.body)
        problems.setdefault((problem.row, problem.field), problem)
    return error_response(request, 422, "invalid request", list(problems.values()))


# pydantic's words where they name its own types rather than what the client should send
_WORDS = {
    "missing": "required",
    "extra_forbidden": "not a field of this request",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a JSON array",
}


def _problem(error: dict, body) -> Problem:
    """One validation error as the client reads it."""
    loc = list(error.get("loc", ()))[1:]  # after "body" (or "query", "path")
    if error.get("type") == "json_invalid":
        return Problem(row=None, field="body", problem=_json_problem(error, body))
    if loc and loc[0] in SCORE_SHAPES:  # the score shape's tag: the client never sent it
        loc = loc[1:]
    path = [p for p in loc if isinstance(p, int) or _a_name(p)]
    row = path[1] if len(path) > 1 and isinstance(path[1], int) else None
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    words = _WORDS.get(error.get("type", "")) or _SHOULD.sub("must", error.get("msg", "invalid"))
    if not path and error.get("type") == "missing":
        words = "required: a JSON object"
    return Problem(row=row, field=field or "body", problem=words)


# "Input should be a valid integer" -> "must be a valid integer"
_SHOULD = re.compile(r"^(Input|String|List|Value|Dictionary|Number) should")


def _a_name(part: str) -> bool:
    """A field name, not pydantic's name of a union member's type (``function-before[...]``),
    which it puts in the location too."""
    return not any(c in part for c in "[](),- ")


def _json_problem(error: dict, body) -> str:
    """Where a body stops being JSON, as line and column (the error's position is a character
    offset into the text)."""
    text = body if isinstance(body, str) else ""
    at = next((p for p in error.get("loc", ()) if isinstance(p, int)), 0)
    line = text.count("\n", 0, at) + 1
    column = at - text.rfind("\n", 0, at)
    why = (error.get("ctx") or {}).get("error", "not JSON")
    return f"not valid JSON at line {line}, column {column}: {why}"


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Framework errors in our envelope; a body that cannot be parsed is an invalid request."""
    if exc.status_code == 400:
        problem = Problem(row=None, field="body", problem="not valid JSON: not UTF-8 text")
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
            schemas["FeatureRecord"] = feature_record_schema(
                state.features, state.nullable, served_catalog(state)
            )
            customers = schemas["ScoreRecords"]["properties"]["customers"]
            customers["items"] = {"$ref": "#/components/schemas/FeatureRecord"}
        return spec

    app.openapi = openapi


def served_catalog(state: ServingState) -> dict[str, Feature]:
    """The catalog entries (and so the ranges) of the served models' features, for this bank's
    products and tier ladder."""
    return catalog(state.product_catalogue(), state.config.tiers)


async def openapi_spec(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def authenticate(state: ServingState, credentials: Credentials) -> ApiKey:
    token = credentials.credentials if credentials else None
    key = state.keys.identify(f"Bearer {token}") if state.keys and token else None
    if key is None:
        raise ApiError(401, "missing or unknown API key (send Authorization: Bearer <key>)")
    if not state.ready:
        raise ApiError(503, "the service is not ready: its models are not loaded and verified")
    return key


def _audit(request: Request, endpoint: str, **facts) -> None:
    """Note what this request read or tried for its one audit line (serving.api.access:
    written by ``Audited`` with the answer's status, whatever it turns out to be)."""
    note(request, endpoint=endpoint, **facts)


def _deny(request: Request, endpoint: str, why: str, **facts):
    _audit(request, endpoint, **facts)
    raise ApiError(403, why)


def score(
    state: ServingState, body: ScoreByIds | ScoreRecords, request: Request, credentials: Credentials
) -> dict:
    """Feature records are scored live; customer ids are answered from the scored month."""
    key = authenticate(state, credentials)
    wanted = _requested(body)
    if body.customers is not None:
        entries = served_catalog(state)
        problems = check_records(body.customers, state.features, state.nullable, entries)
        if problems:
            raise ApiError(422, f"{len(problems)} invalid field(s)", problems)
        for record in body.customers:
            record["customer_id"] = as_id(record["customer_id"])
        ids = [r["customer_id"] for r in body.customers]
    else:
        ids = list(wanted)
    _audit(request, "/score", customer_ids=ids)
    snapshot = state.snapshot
    keys = [snapshot.key(c) for c in ids] if snapshot is not None else ids
    if not reaches_all(key, snapshot, keys):
        why = "an RM key may only score customers in its own book"
        _deny(request, "/score", why)
    unknown: list[dict] = []
    if body.customers is not None:
        frame = pd.DataFrame.from_records(body.customers, columns=["customer_id", *state.features])
        results = state.score_live(frame, body.explain)
        versions = state.models.versions
    else:
        results, unknown = _snapshot_answers(state, ids, body.explain)
        versions = state.snapshot.versions
    _audit(request, "/score", models=versions, unknown=len(unknown))
    return {
        "results": results,
        "unknown": unknown,
        "models": versions,
        "request_id": request_id(request),
    }


def _requested(body: ScoreByIds | ScoreRecords) -> list:
    """The records or ids of a score request (its shape holds one list of at least one):
    413 past MAX_CUSTOMERS."""
    wanted = body.customers if body.customers is not None else body.customer_ids
    if len(wanted) > MAX_CUSTOMERS:
        raise ApiError(413, f"{len(wanted):,} customers in one request; at most {MAX_CUSTOMERS:,}")
    return wanted


def _snapshot_answers(state: ServingState, ids: list, explain: bool) -> tuple[list, list]:
    """The scored month's answers for the known ``ids`` (answered as asked), and the unknown
    ones as ``{"row", "customer_id", "problem"}``."""
    if state.snapshot is None:
        raise ApiError(
            422,
            "this service has no scored snapshot (retain serve --scores DIR)",
            [Problem(row=None, field="customer_ids", problem="no snapshot")],
        )
    snapshot = state.snapshot
    known = snapshot.scores.index
    keys = [snapshot.key(cid) for cid in ids]
    kind = "integers" if snapshot.integer_ids else "strings"
    found = [key is not None and key in known for key in keys]
    unknown = [
        {"row": i, "customer_id": cid, "problem": _unknown_id(cid, snapshot, kind)}
        for i, (cid, ok) in enumerate(zip(ids, found, strict=True))
        if not ok
    ]
    wanted = [k for k, ok in zip(keys, found, strict=True) if ok]
    asked = [c for c, ok in zip(ids, found, strict=True) if ok]
    return snapshot.answers(wanted, asked, state.products, explain), unknown


def _unknown_id(customer_id, snapshot, kind: str) -> str:
    """Why an id was not answered: of the wrong kind for this bank, or not in the month."""
    if snapshot.key(customer_id) is None:
        if kind == "integers":
            return 'not an id of this bank: its ids are integers (1234, not "0001234")'
        return "not an id of this bank: its ids are strings (send an id as text, zeros kept)"
    return f"not in the scored snapshot of {snapshot.cutoff}"


def retention_list(
    state: ServingState, body: RetentionListRequest, request: Request, credentials: Credentials
) -> dict:
    """An RM's list as ``retain score`` cut it: an rm key its own only; crm (delivering lists
    to RM workbenches) and admin any RM's."""
    key = authenticate(state, credentials)
    if not may_pull_list(key, body.rm_id):
        why = "an RM key may only pull its own retention list"
        _deny(request, "/retention_list", why, list_id=body.rm_id)
    snapshot = _require_snapshot(state)
    rows = snapshot.retention_list(body.rm_id, body.k, body.lang)
    if rows.empty and len(snapshot.book(body.rm_id)) == 0 and key.role != "rm":
        raise ApiError(404, f"no RM {body.rm_id!r} with customers in the snapshot")
    entries = [list_entry(r) for r in rows.to_dict("records")]
    _audit(
        request,
        "/retention_list",
        customer_ids=[e["customer_id"] for e in entries],
        models=snapshot.versions,
        list_id=body.rm_id,
    )
    return {
        "rm_id": body.rm_id,
        "cutoff": snapshot.cutoff,
        "entries": entries,
        "models": snapshot.versions,
        "request_id": request_id(request),
    }


def list_entry(row: dict) -> dict:
    """One list row as the API reports it."""
    return {
        "rank": int(row["rank"]),
        "customer_id": plain_id(row["customer_id"]),
        "customer_name": str(row["customer_name"]),
        "tier": plain(row["tier"]),
        "pyramid_level": None if plain(row["pyramid_level"]) is None else int(row["pyramid_level"]),
        "p_churn": float(row["p_churn"]),
        "risk_band": str(row["risk_band"]),
        "leaving_now": bool(plain(row["leaving_now"]) or False),
        "contribution_12m": float(row["contribution_12m"]),
        "expected_loss": float(row["expected_loss"]),
        "saved_value": plain(row.get("saved_value")),
        "reasons": [row[f"reason_{r}"] for r in (1, 2, 3) if isinstance(row[f"reason_{r}"], str)],
        "next_best_offer": plain(row["next_best_offer"]),
        "offer_propensity": plain(row["offer_propensity"]),
        "offer_amount": plain(row["offer_amount"]),
        "offer_date": None
        if plain(row["offer_date"]) is None
        else str(pd.Timestamp(row["offer_date"]).date()),
        "action": str(row["action"]),
    }


def customer(
    state: ServingState, customer_id: str, request: Request, credentials: Credentials
) -> dict:
    """The month's answer for one customer, with the features behind it."""
    key = authenticate(state, credentials)
    snapshot = _require_snapshot(state)
    found = _reach_or_refuse(state, key, request, "/customers", customer_id)
    result = snapshot.answers([found.customer], [found.customer], state.products)[0]
    row = snapshot.features.loc[found.customer]
    shown = shown_features(key, state.features)  # an rm key: not the sensitive ones
    features = {name: _scalar(row[name]) for name in shown if name in row}
    info = snapshot.scores.loc[found.customer]
    _audit(request, "/customers", models=snapshot.versions, customer_id=plain_id(found.customer))
    return {
        "customer_id": plain_id(found.customer),
        "cutoff": snapshot.cutoff,
        "rm_id": found.owner,
        "customer_name": str(info["customer_name"]),
        "result": result,
        "features": features,
        "models": snapshot.versions,
        "request_id": request_id(request),
    }


def _reach_or_refuse(
    state: ServingState, key: ApiKey, request: Request, endpoint: str, customer_id
):
    """The customer a key may act for: 403 outside an rm key's book (unknown ids included),
    404 for an id the snapshot does not hold."""
    found = reach(key, _require_snapshot(state), customer_id)
    asked = customer_id if found.customer is None else plain_id(found.customer)
    _audit(request, endpoint, customer_ids=[asked])
    if not found.allowed:
        _deny(request, endpoint, "not a customer in this RM's book")
    if not found.exists:
        raise ApiError(404, "no such customer in the scored snapshot")
    return found


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
    key = authenticate(state, credentials)
    found = _reach_or_refuse(state, key, request, "/outcomes", body.customer_id)
    customer_id, owner = plain_id(found.customer), found.owner
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
            recorded_key=key.sha256,
        )
    except OutcomeConflict as exc:
        _audit(request, "/outcomes", customer_id=customer_id)
        raise ApiError(409, str(exc)) from exc
    except _store_errors() as exc:
        log.error("outcome store failed: %s", type(exc).__name__)
        why = "the outcome store is unreachable; retry with the same request_id"
        raise ApiError(503, why) from exc
    response.status_code = 201 if created else 200
    _audit(
        request,
        "/outcomes",
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
    key = authenticate(state, credentials)
    customer_id = plain_id(_reach_or_refuse(state, key, request, "/outcomes", customer_id).customer)
    try:
        outcomes = store.for_customer(customer_id)
    except _store_errors() as exc:
        log.error("outcome store failed: %s", type(exc).__name__)
        raise ApiError(503, "the outcome store is unreachable") from exc
    _audit(request, "/outcomes", customer_id=customer_id, read=True)
    return {
        "customer_id": customer_id,
        "outcomes": [o.public() for o in outcomes],
        "request_id": request_id(request),
    }


def _require_snapshot(state: ServingState):
    if state.snapshot is None:
        raise ApiError(404, "this service has no scored snapshot (retain serve --scores DIR)")
    return state.snapshot


def _scalar(value):
    return None if pd.isna(value) else float(value)
