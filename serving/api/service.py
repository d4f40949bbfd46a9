"""The scoring API: a BentoML service with a FastAPI app mounted at the root (docs/design.md §8).

BentoML runs the workers, restarts dead ones and serves /healthz, /livez, /readyz (ready only
after :class:`serving.api.state.ServingState` loaded and verified every model and passed a
warm-up). The data routes are FastAPI routes, so request and response bodies are Pydantic
models, status codes are ours and nothing is ever unpickled: there is no ``@bentoml.api``
route, and every POST must be ``application/json``. The spec of these routes is served at
``/docs`` (and ``/openapi.json``).

BentoML's own metrics are off (they label requests by raw path, ids included): ``/metrics`` is
ours, behind a ``metrics`` or ``admin`` key, labelled by route template
(:mod:`serving.api.metrics`). ``/`` is ours too, and BentoML's own pages are not served
(:mod:`serving.api.front`); every answer carries the security headers; every request a key
made is one line of the hash-chained audit log (:mod:`serving.api.access`).

Run it with ``retain serve``; it resolves the configuration once and hands it to the workers
(RETAIN_BANK_CONFIG: the bank and its ``[service]`` section — snapshot, keys, audit log,
outcome store; RETAIN_WORKERS; MLFLOW_TRACKING_URI), with the admission limits
of :mod:`serving.api.shedding` (RETAIN_MAX_IN_FLIGHT, RETAIN_MAX_QUEUE, RETAIN_QUEUE_MS,
RETAIN_RETRY_AFTER): past them a request is answered 503 with Retry-After at once.
"""

from __future__ import annotations

import gc
import logging
import os

import bentoml
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import ui
from serving.api import routes
from serving.api.access import READS_METRICS, Audited, refused
from serving.api.front import OneLine, OwnFront, SecurityHeaders
from serving.api.guard import BodyGuard, JsonErrors, KeyFirst
from serving.api.metrics import RouteMetrics, exposition
from serving.api.schemas import (
    ID_PATTERN,
    CustomerResponse,
    OutcomeList,
    OutcomeRequest,
    OutcomeResponse,
    RetentionListRequest,
    RetentionListResponse,
    ScoreRequest,
    ScoreResponse,
)
from serving.api.shedding import Admission, Limits
from serving.api.state import ServingState
from serving.outcomes import OutcomeStore

WORKERS = int(os.environ.get("RETAIN_WORKERS", "2"))
LIMITS = Limits.from_env()

app = FastAPI(
    title="retain scoring API",
    version="1",
    description="Churn, cross-sell and upgrade scores with reasons, and RM retention lists.",
    docs_url=None,
    redoc_url=None,
    openapi_url="/openapi.json",
)
app.add_middleware(BodyGuard)
app.add_middleware(Admission, limits=LIMITS)  # a rejection costs no body read
# one audit line per request a key made, whatever its answer (shed, refused, served)
app.add_middleware(Audited, log=lambda: state().audit)
# outermost: no known key, no slot and no body read (a stranger cannot hold a worker)
app.add_middleware(
    KeyFirst,
    identify=lambda header: identify(header),
    refused=lambda scope, header: refuse_line(scope, header),
)
app.add_exception_handler(RequestValidationError, routes.invalid_request)
app.add_exception_handler(routes.ApiError, routes.api_error)
app.add_exception_handler(StarletteHTTPException, routes.http_error)
app.add_exception_handler(Exception, routes.unexpected)
app.add_api_route("/docs", routes.openapi_spec, methods=["GET"], include_in_schema=False)

# declared as the bearerAuth scheme; a missing key is answered 401 in our envelope by the route
Auth = Depends(
    HTTPBearer(
        auto_error=False, scheme_name="bearerAuth", description="An API key from `retain keys add`."
    )
)
CustomerId = Path(pattern=ID_PATTERN, description="The bank's customer id.")
# the first paths, kept for existing callers; integrators use /v1
OLD = {"deprecated": True, "responses": routes.ERRORS}


# a path is the caller's text: a newline in it must not start a line of the service log
logging.getLogger("bentoml.access").addFilter(OneLine())
logging.getLogger("retain.service").addFilter(OneLine())


def state() -> ServingState:
    return bentoml.get_current_service().state


def identify(authorization: str | None):
    """The key behind an Authorization header, by this worker's keys (None: unknown)."""
    keys = state().keys
    return keys.identify(authorization) if keys is not None else None


def refuse_line(scope, authorization: str | None) -> None:
    """The rate-limited audit line of a request refused for its key."""
    keys = state().keys

    def why() -> dict:  # worked out only for the lines written
        return keys.why_refused(authorization) if keys is not None else {"reason": "no_keys"}

    refused(state().audit, scope, "refused", why)


@app.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics for a metrics or admin key (the gate answered 401 without one)."""
    if request.state.key.role not in READS_METRICS:
        return routes.error_response(request, 403, "metrics are for a metrics or admin key")
    body, media = exposition()
    return Response(body, media_type=media)


@bentoml.service(
    name="retain",
    workers=WORKERS,
    # BentoML's own cap (429, its own body) is only a backstop, above what Admission holds
    traffic={"timeout": 30, "max_concurrency": WORKERS * max(16, 2 * LIMITS.most_at_once)},
    # BentoML's metrics label requests by raw path (customer ids, unbounded): ours instead
    metrics={"enabled": False},
)
@bentoml.asgi_app(app, path="/")
@bentoml.asgi_app(ui.app, path="/")  # the RM page (/ui/...), outside the JSON-only guard
class Retain:
    def __init__(self) -> None:
        self.state = ServingState.load()
        # the table is made on first use
        self.outcomes = OutcomeStore(self.state.config.service.outcomes)
        routes.describe_feature_records(app, self.state)
        # what is loaded now lives as long as the worker: out of the collector's sight, so a
        # full collection no longer walks its ~500k objects (190 ms on the demo snapshot, a
        # stall that every waiting request, accepted or about to be turned away, sits through)
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.state.ready

    @app.post("/v1/score", response_model=ScoreResponse, responses=routes.ERRORS)
    @app.post("/score", response_model=ScoreResponse, **OLD)
    def score(self, body: ScoreRequest, request: Request, authorization=Auth):
        """Scores, propensities and reasons for feature records or snapshot customer ids."""
        return routes.score(self.state, body, request, authorization)

    @app.post("/v1/retention_list", response_model=RetentionListResponse, responses=routes.ERRORS)
    @app.post("/retention_list", response_model=RetentionListResponse, **OLD)
    def retention_list(self, body: RetentionListRequest, request: Request, authorization=Auth):
        """An RM's ranked retention list from the scored snapshot."""
        return routes.retention_list(self.state, body, request, authorization)

    @app.get(
        "/v1/customers/{customer_id}", response_model=CustomerResponse, responses=routes.ERRORS
    )
    @app.get("/customers/{customer_id}", response_model=CustomerResponse, **OLD)
    def customer(self, request: Request, customer_id: str = CustomerId, authorization=Auth):
        """Latest scores, reasons and features of one customer."""
        return routes.customer(self.state, customer_id, request, authorization)

    @app.post(
        "/v1/outcomes",
        response_model=OutcomeResponse,
        status_code=201,
        responses={
            200: {
                "model": OutcomeResponse,
                "description": "A repeated request_id: the outcome stored the first time.",
            },
            **routes.ERRORS,
            409: routes.CONFLICT,
        },
    )
    def record_outcome(
        self, body: OutcomeRequest, request: Request, response: Response, authorization=Auth
    ):
        """Record what a contact achieved for a customer in the caller's book."""
        return routes.record_outcome(
            self.state, self.outcomes, body, request, response, authorization
        )

    @app.get("/v1/outcomes", response_model=OutcomeList, responses=routes.ERRORS)
    def outcomes(
        self, request: Request, authorization=Auth, customer_id: str = Query(pattern=ID_PATTERN)
    ):
        """A customer's recorded outcomes, newest first."""
        return routes.customer_outcomes(
            self.state, self.outcomes, customer_id, request, authorization
        )


# around the whole service, outermost first: count by route template, add the security
# headers, answer / and hide BentoML's own pages, put framework errors in the JSON envelope
Retain.add_asgi_middleware(RouteMetrics)
Retain.add_asgi_middleware(SecurityHeaders)
Retain.add_asgi_middleware(OwnFront)
Retain.add_asgi_middleware(JsonErrors)
