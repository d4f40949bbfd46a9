"""The data routes' logic: authenticate, check, authorise, score, audit — in that order.

Status codes: 401 no or unknown key; 403 a role or RM book that does not cover the request
(the body names no customer); 413 more than 10,000 customers or a body over the cap; 415 a
body that is not JSON; 422 every invalid field with its row index; 503 not ready.
"""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pandas as pd
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.auth import ApiKey
from serving.schemas import (
    MAX_CUSTOMERS,
    ErrorResponse,
    Problem,
    RetentionListRequest,
    ScoreRequest,
    check_records,
)
from serving.state import ServingState, plain_id

log = logging.getLogger("retain.service")

ERRORS = {code: {"model": ErrorResponse} for code in (401, 403, 404, 413, 415, 422, 503)}


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


def request_id(request: Request) -> str:
    if not hasattr(request.state, "request_id"):
        request.state.request_id = uuid.uuid4().hex
    return request.state.request_id


def error_response(request: Request, status: int, message: str, problems=()) -> JSONResponse:
    body = {"error": {"status": status, "message": message,
                      "problems": [p.model_dump() for p in problems],
                      "request_id": request_id(request)}}  # fmt: skip
    return JSONResponse(body, status_code=status)


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
        problems.setdefault((row, name), Problem(row=row, field=name,
                                                 problem=error.get("msg", "invalid")))  # fmt: skip
    return error_response(request, 422, "invalid request", list(problems.values()))


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Framework errors in our envelope; a body that cannot be parsed is an invalid request."""
    if exc.status_code == 400:
        problem = Problem(row=None, field="body", problem="not valid JSON (UTF-8)")
        return error_response(request, 422, "invalid request", [problem])
    return error_response(request, exc.status_code, str(exc.detail))


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    # a bug, never bad input: log the kind of error only (no customer data), answer generically
    log.error("request %s failed: %s", request_id(request), type(exc).__name__)
    return error_response(request, 500, "internal error")


async def openapi_spec(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def _authenticate(state: ServingState, authorization: str | None) -> ApiKey:
    key = state.keys.identify(authorization) if state.keys else None
    if key is None:
        raise ApiError(401, "missing or unknown API key (send Authorization: Bearer <key>)")
    if not state.ready:
        raise ApiError(503, "the service is not ready: its models are not loaded and verified")
    return key


def _audit(state, key: ApiKey, request: Request, endpoint: str, count: int, models, status=200,
           **extra):  # fmt: skip
    state.audit.write(key=key.name, role=key.role, endpoint=endpoint, rm_book=key.rm_id,
                      customers=count, models=models, request_id=request_id(request),
                      status=status, **extra)  # fmt: skip


def _deny(state, key: ApiKey, request: Request, endpoint: str, count: int, why: str):
    _audit(state, key, request, endpoint, count, None, 403)
    raise ApiError(403, why)


def score(state: ServingState, body: ScoreRequest, request: Request, authorization) -> dict:
    key = _authenticate(state, authorization)
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
        raise ApiError(422, "no customers", [Problem(row=None, field="customers",
                                                     problem="at least one")])  # fmt: skip
    if body.customers is not None:
        problems = check_records(body.customers, state.features, state.nullable)
        if problems:
            raise ApiError(422, f"{len(problems)} invalid field(s)", problems)
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
    if body.customers is not None:
        frame = pd.DataFrame.from_records(body.customers, columns=["customer_id", *state.features])
    else:
        frame = _snapshot_rows(state, ids)
    results = state.score(frame, body.explain)
    versions = state.models.versions
    _audit(state, key, request, "/score", len(results), versions)
    return {"results": results, "models": versions, "request_id": request_id(request)}


def _snapshot_rows(state: ServingState, ids: list[int]) -> pd.DataFrame:
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
    problems = [Problem(row=i, field="customer_ids",
                        problem=f"unknown customer id (this bank's ids are {kind})")
                for i, key in enumerate(keys) if key is None or key not in known]  # fmt: skip
    if problems:
        raise ApiError(422, f"{len(problems)} unknown customer id(s)", problems)
    rows = snapshot.features.loc[keys, state.features].reset_index()
    rows["customer_id"] = ids  # answered as asked
    return rows.astype({c: "float64" for c in state.features})


def retention_list(state: ServingState, body: RetentionListRequest, request: Request,
                   authorization) -> dict:  # fmt: skip
    key = _authenticate(state, authorization)
    if key.role == "crm" or (key.role == "rm" and key.rm_id != body.rm_id):
        _deny(
            state,
            key,
            request,
            "/retention_list",
            0,
            "retention lists are for the RM who owns the book (or an admin)",
        )
    snapshot = _require_snapshot(state)
    rows = snapshot.retention_list(body.rm_id, body.k, body.lang)
    if rows.empty and len(snapshot.book(body.rm_id)) == 0 and key.role == "admin":
        raise ApiError(404, f"no RM {body.rm_id!r} with customers in the snapshot")
    entries = [
        {"rank": int(r.rank), "customer_id": plain_id(r.customer_id),
         "customer_name": str(r.customer_name), "tier": _opt(r.tier, str),
         "pyramid_level": _opt(r.pyramid_level, int), "p_churn": float(r.p_churn),
         "contribution_12m": float(r.contribution_12m), "expected_loss": float(r.expected_loss),
         "reasons": [t for t in (r.reason_1, r.reason_2, r.reason_3) if isinstance(t, str)],
         "next_best_offer": _opt(r.next_best_offer, str),
         "offer_propensity": _opt(r.offer_propensity, float), "action": str(r.action)}
        for r in rows.itertuples(index=False)
    ]  # fmt: skip
    _audit(state, key, request, "/retention_list", len(entries), snapshot.versions)
    return {"rm_id": body.rm_id, "cutoff": snapshot.cutoff, "entries": entries,
            "models": snapshot.versions, "request_id": request_id(request)}  # fmt: skip


def customer(state: ServingState, customer_id: str, request: Request, authorization) -> dict:
    key = _authenticate(state, authorization)
    snapshot = _require_snapshot(state)
    wanted = snapshot.key(customer_id)
    owner = snapshot.owner([wanted]).iloc[0] if wanted is not None else None
    if key.role == "rm" and (owner is None or pd.isna(owner) or owner != key.rm_id):
        _deny(state, key, request, "/customers", 1, "not a customer in this RM's book")
    if wanted is None or wanted not in snapshot.features.index:
        raise ApiError(404, "no such customer in the scored snapshot")
    customer_id = wanted
    frame = _snapshot_rows(state, [customer_id])
    result = state.score(frame, explain_rows=True)[0]
    info = snapshot.scores.loc[customer_id]
    features = {name: _scalar(v) for name, v in frame.iloc[0].items() if name != "customer_id"}
    versions = state.models.versions
    _audit(state, key, request, "/customers", 1, versions, customer_id=plain_id(customer_id))
    return {"customer_id": customer_id, "cutoff": snapshot.cutoff,
            "rm_id": None if pd.isna(owner) else str(owner),
            "customer_name": str(info["customer_name"]), "result": result,
            "features": features, "models": versions,
            "request_id": request_id(request)}  # fmt: skip


def _require_snapshot(state: ServingState):
    if state.snapshot is None:
        raise ApiError(404, "this service has no scored snapshot (retain serve --scores DIR)")
    return state.snapshot


def _opt(value, kind):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else kind(value)


def _scalar(value):
    return None if pd.isna(value) else float(value)
