"""The RM page at ``/ui`` (docs/design.md §12): server-rendered, no external assets, key login.

:data:`app` is mounted on the BentoML service beside the API (``serving/api/service.py``); it is a
separate ASGI app so that its HTML forms are not held to the API's JSON-only body guard.
"""

from __future__ import annotations

import bentoml
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.api.access import Audited
from serving.api.guard import MAX_FORM_BYTES, BodyGuard
from serving.ui.pages import http_error_page, invalid_page, router

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
app.include_router(router)
app.add_exception_handler(RequestValidationError, invalid_page)
app.add_exception_handler(StarletteHTTPException, http_error_page)
# the page's forms: small, url-encoded, and whole within seconds (a login is read before any
# key is known, so the cap is what keeps a stranger's 60 MB form from being read)
app.add_middleware(BodyGuard, media="application/x-www-form-urlencoded", max_bytes=MAX_FORM_BYTES)
# one audit line per request of a session, whatever its answer
app.add_middleware(Audited, log=lambda: bentoml.get_current_service().state.audit)
