"""The scoring API: a BentoML service with a FastAPI app mounted at the root (DESIGN §8).

BentoML runs the workers, restarts dead ones and serves /healthz, /livez, /readyz (ready only
after :class:`serving.state.ServingState` loaded and verified every model and passed a
warm-up) and /metrics. The data routes are FastAPI routes, so request and response bodies are
Pydantic models, status codes are ours and nothing is ever unpickled: there is no
``@bentoml.api`` route, and every POST must be ``application/json``. The spec of these routes
is served at ``/docs`` (and ``/openapi.json``).

Run it with ``retain serve``; configuration comes from the environment it sets
(RETAIN_SCORES, RETAIN_KEYS, RETAIN_AUDIT_LOG, MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import os

import bentoml
from fastapi import FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import routes, ui
from serving.guard import BodyGuard, JsonErrors
from serving.schemas import (
    ID_PATTERN,
    CustomerResponse,
    RetentionListRequest,
    RetentionListResponse,
    ScoreRequest,
    ScoreResponse,
)
from serving.state import ServingState

app = FastAPI(
    title="retain scoring API",
    version="1",
    description="Churn, cross-sell and upgrade scores with reasons, and RM retention lists.",
    docs_url=None,
    redoc_url=None,
    openapi_url="/openapi.json",
)
app.add_middleware(BodyGuard)
app.add_exception_handler(RequestValidationError, routes.invalid_request)
app.add_exception_handler(routes.ApiError, routes.api_error)
app.add_exception_handler(StarletteHTTPException, routes.http_error)
app.add_exception_handler(Exception, routes.unexpected)
app.add_api_route("/docs", routes.openapi_spec, methods=["GET"], include_in_schema=False)

Auth = Header(default=None, description="Bearer <api key>")


@bentoml.service(
    name="retain",
    workers=int(os.environ.get("RETAIN_WORKERS", "2")),
    traffic={"timeout": 30, "max_concurrency": 32},
)
@bentoml.asgi_app(app, path="/")
@bentoml.asgi_app(ui.app, path="/")  # the RM page (/ui/...), outside the JSON-only guard
class Retain:
    def __init__(self) -> None:
        self.state = ServingState.load()

    def __is_ready__(self) -> bool:
        return self.state.ready

    @app.post("/score", response_model=ScoreResponse, responses=routes.ERRORS)
    def score(self, body: ScoreRequest, request: Request, authorization: str | None = Auth):
        """Scores, propensities and reasons for feature records or snapshot customer ids."""
        return routes.score(self.state, body, request, authorization)

    @app.post("/retention_list", response_model=RetentionListResponse, responses=routes.ERRORS)
    def retention_list(
        self, body: RetentionListRequest, request: Request, authorization: str | None = Auth
    ):
        """An RM's ranked retention list from the scored snapshot."""
        return routes.retention_list(self.state, body, request, authorization)

    @app.get("/customers/{customer_id}", response_model=CustomerResponse,
             responses=routes.ERRORS)  # fmt: skip
    def customer(
        self,
        request: Request,
        customer_id: str = Path(pattern=ID_PATTERN, description="The bank's customer id."),
        authorization: str | None = Auth,
    ):
        """Latest scores, reasons and features of one customer."""
        return routes.customer(self.state, customer_id, request, authorization)


Retain.add_asgi_middleware(JsonErrors)
