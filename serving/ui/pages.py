"""The RM page's routes (docs/design.md §12): log in, my lists, one customer, record an outcome,
download a list. Same keys, roles, book isolation and audit log as the API.

Every request of a session is written to the audit log (serving.api.access.Audited: the
customers and list it showed or tried, its status); a page for somebody else's customer or list
is a 403 page; a failed login is a rate-limited audit line; no session sends the browser to the
login page. A ``metrics`` key cannot log in. Cookies are ``Secure`` when the page is served over
TLS (directly or behind the proxy, ``X-Forwarded-Proto: https``).
"""

from __future__ import annotations

import time
import uuid
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

import bentoml
import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.targets import held_products, holds_column
from serving.answer import shown_reasons
from serving.api.access import may_pull_list, note, reach, refused
from serving.api.auth import KeyRing
from serving.api.front import over_tls
from serving.api.routes import request_id
from serving.api.state import ServingState, plain_id
from serving.lists import GROWTH, RETENTION, list_file
from serving.outcomes import NEXT_STEP_CHARS, NOTE_CHARS, OutcomeConflict, OutcomeError
from serving.texts import ACTIONS, OFFERS, text
from serving.ui import rows as listing
from serving.ui.chart import month_chart
from serving.ui.past import contact_rows, last_contacts
from serving.ui.session import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    Sessions,
    csrf_matches,
)
from serving.ui.words import CHANNELS, RESULTS, WORDS, month_label, word

LANGS = ("zh", "en")
PAGE_ROLES = frozenset({"crm", "rm", "admin"})  # a metrics key reads /metrics only
REQUEST_ID_CHARS = 64
SORTABLE = {s for kind in listing.SORTS.values() for s in kind}
REACHED = ("yes", "no")
TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES)
router = APIRouter(prefix="/ui", include_in_schema=False)


def serving_state() -> ServingState:
    """The worker's loaded state (the BentoML service instance owns it)."""
    return bentoml.get_current_service().state


@cache
def _sessions(keys: KeyRing, path: str, idle_minutes: float, hours: float) -> Sessions:
    return Sessions(keys, Path(path), idle_minutes, hours)


def sessions(state: ServingState) -> Sessions:
    """The worker's session store (one per configuration)."""
    service = state.config.service
    return _sessions(
        state.keys, service.sessions_path, service.session_idle_minutes, service.session_hours
    )


def outcome_store():
    """The service's outcome store (:mod:`serving.outcomes`), or None where it has none."""
    return getattr(bentoml.get_current_service(), "outcomes", None)


State = Depends(serving_state)


# ---------------------------------------------------------------- rendering helpers


def language(request: Request, state: ServingState) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LANGS else state.config.language


def render(
    request: Request,
    state: ServingState,
    name: str,
    status: int = 200,
    session: Session | None = None,
    **context,
) -> HTMLResponse:
    lang = language(request, state)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": lambda key: word(WORDS, key, lang),
            "session": session,
            "who": who(state, session),
            "switch": _with_query(request, lang="en" if lang == "zh" else "zh"),
            **context,
        },
        status_code=status,
    )
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(
            LANG_COOKIE, lang, samesite="strict", httponly=True, secure=over_tls(request.scope)
        )
    started = getattr(request.state, "started", None)
    if started is not None:
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
    return response


def who(state: ServingState, session: Session | None) -> str | None:
    """Who is logged in, as the header says it: an RM by name (the bank's ``rms`` table) and
    id, anyone else by the key's name."""
    if session is None:
        return None
    rm_id = session.key.rm_id
    name = state.snapshot.rm_name(rm_id) if rm_id and state.snapshot is not None else None
    if rm_id:
        return f"{name} · {rm_id}" if name else f"{session.key.name} · {rm_id}"
    return session.key.name


def refuse(request, state, session, status: int, title: str, body: str) -> HTMLResponse:
    return render(request, state, "error.html", status, session, title=title, message=body)


def audit(request: Request, endpoint: str, **facts) -> None:
    """Note what this page showed or tried for its audit line (``Audited`` writes it with the
    page's status): ``customer_ids``, ``list_id``, ``models``."""
    note(request, endpoint=endpoint, **facts)


def asked_id(found, customer_id: str):
    """The id a page asked for, as the bank keeps it when it can be one of its ids."""
    return customer_id if found.customer is None else plain_id(found.customer)


def current(request: Request, state: ServingState) -> Session | None:
    """The request's live session (its key then goes on the request's audit line)."""
    request.state.started = time.perf_counter()
    session = sessions(state).read(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        request.state.key = session.key
    return session


def set_cookie(request: Request, response: Response, name: str, value: str, seconds: int):
    """A page cookie: HttpOnly, SameSite=Strict, for /ui, Secure over TLS; 0 s deletes it."""
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        httponly=True,
        samesite="strict",
        path="/ui",
        secure=over_tls(request.scope),
    )


def to_login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303)


def config(state: ServingState):
    """The served configuration with the models' product catalogue (for product names)."""
    return state.config.with_products(state.product_catalogue())


# ---------------------------------------------------------------- login and logout


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request, state: ServingState = State):
    return RedirectResponse("/ui/list" if current(request, state) else "/ui/login", 303)


@router.get("/page.css")
def stylesheet() -> Response:
    """The page's one stylesheet (no inline styles: the CSP allows styles from here only)."""
    return Response((TEMPLATES / "page.css").read_text(encoding="utf-8"), media_type="text/css")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, state: ServingState = State):
    return login_form(request, state)


def login_form(request: Request, state: ServingState, failed: str | None = None):
    """The login form; ``failed`` names the word that says why the last try failed."""
    cookie, nonce = sessions(state).login_nonce()
    response = render(
        request, state, "login.html", 401 if failed else 200, csrf=nonce, failed=failed
    )
    set_cookie(request, response, LOGIN_COOKIE, cookie, 3600)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, state: ServingState = State):
    form = await request.form()
    store = sessions(state)
    if not store.login_nonce_matches(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return refuse(
            request,
            state,
            None,
            403,
            word(WORDS, "forbidden", language(request, state)),
            word(WORDS, "csrf_text", language(request, state)),
        )
    authorization = f"Bearer {str(form.get('key', '')).strip()}"
    key = state.keys.identify(authorization)
    if key is None or key.role not in PAGE_ROLES:
        why = (
            (lambda: state.keys.why_refused(authorization))
            if key is None
            else (lambda: {"reason": "no_page_role", "key": key.name, "role": key.role})
        )
        refused(state.audit, request.scope, "login_failed", why)
        return login_form(request, state, failed="bad_key" if key is None else "no_page")
    request.state.key = key
    audit(request, "/ui/login")
    response = RedirectResponse("/ui/list", status_code=303)
    hours = state.config.service.session_hours
    set_cookie(request, response, SESSION_COOKIE, store.start(key), int(hours * 3600))
    set_cookie(request, response, LOGIN_COOKIE, "", 0)
    return response


@router.post("/logout")
async def logout(request: Request, state: ServingState = State):
    session = current(request, state)
    form = await request.form()
    if session is None:
        return to_login()
    if not csrf_matches(session, form.get("csrf")):
        return csrf_refused(request, state, session)
    sessions(state).end(request.cookies.get(SESSION_COOKIE))  # every copy of the cookie
    audit(request, "/ui/logout")
    response = to_login()
    set_cookie(request, response, SESSION_COOKIE, "", 0)
    return response


def csrf_refused(request, state, session) -> HTMLResponse:
    lang = language(request, state)
    return refuse(
        request, state, session, 403, word(WORDS, "forbidden", lang), word(WORDS, "csrf_text", lang)
    )


def forbidden(request, state, session) -> HTMLResponse:
    lang = language(request, state)
    return refuse(
        request,
        state,
        session,
        403,
        word(WORDS, "forbidden", lang),
        word(WORDS, "forbidden_text", lang),
    )


def not_found(request, state, session) -> HTMLResponse:
    lang = language(request, state)
    return refuse(
        request,
        state,
        session,
        404,
        word(WORDS, "not_found", lang),
        word(WORDS, "not_found_text", lang),
    )


def unready(request, state, session) -> HTMLResponse | None:
    if state.ready and state.snapshot is not None:
        return None
    lang = language(request, state)
    return refuse(
        request,
        state,
        session,
        503,
        word(WORDS, "not_ready", lang),
        state.problem or word(WORDS, "not_found_text", lang),
    )


async def invalid_page(request: Request, exc: RequestValidationError) -> HTMLResponse:
    """A page asked with a parameter it does not take: a page that says so — never the
    framework's JSON, which echoes the input."""
    return _error_page(request, 422)


async def http_error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
    """The framework's errors (a method the page does not take, say) as a page."""
    response = _error_page(request, exc.status_code)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def _error_page(request: Request, status: int) -> HTMLResponse:
    state = serving_state()
    session = current(request, state)
    lang = language(request, state)
    key = "not_found" if status == 404 else "bad_request"
    return render(
        request,
        state,
        "error.html",
        status,
        session,
        title=word(WORDS, key, lang),
        message=word(WORDS, f"{key}_text", lang),
        # the language switch leads to the list, not back to what was refused
        switch="/ui/list?" + urlencode({"lang": "en" if lang == "zh" else "zh"}),
    )


# ---------------------------------------------------------------- my lists


def list_owner_for(session: Session, asked: str | None) -> tuple[str | None, bool]:
    """(whose list to show, allowed): an RM its own (the default), crm and admin choose."""
    if session.key.role == "rm":
        return session.key.rm_id, may_pull_list(session.key, asked or session.key.rm_id)
    return (asked or None), may_pull_list(session.key, asked)


def list_rows(state: ServingState, rm_id: str, kind: str, lang: str) -> pd.DataFrame:
    """The list as ``retain score`` cut it — what /v1/retention_list returns."""
    if kind == GROWTH:
        return state.snapshot.growth_list(rm_id, lang)
    return state.snapshot.retention_list(rm_id, None, lang)


def filtered(rows: pd.DataFrame, band: str, leaving: str, action: str) -> pd.DataFrame:
    if band and "risk_band" in rows:
        rows = rows[rows["risk_band"] == band]
    if leaving in ("yes", "no") and "leaving_now" in rows:
        rows = rows[rows["leaving_now"].fillna(False).astype(bool) == (leaving == "yes")]
    if action and "action" in rows:
        rows = rows[rows["action"] == action]
    return rows


@router.get("/list", response_class=HTMLResponse)
def my_list(
    request: Request,
    state: ServingState = State,
    rm_id: str | None = None,
    kind: Literal["retention", "growth"] = "retention",
    band: str = "",
    leaving: str = "",
    action: str = "",
    sort: str = "rank",
    order: Literal["asc", "desc"] = "asc",
):
    session = current(request, state)
    if session is None:
        return to_login()
    if (problem := unready(request, state, session)) is not None:
        return problem
    owner, allowed = list_owner_for(session, rm_id)
    if not allowed:
        audit(request, "/ui/list", list_id=rm_id)
        return forbidden(request, state, session)
    lang = language(request, state)
    snapshot = state.snapshot
    choices = sorted(snapshot.rms["rm_id"].astype(str)) if session.key.role != "rm" else []
    rows = list_rows(state, owner, kind, lang) if owner else None
    context = {
        "owner": owner,
        "owner_name": snapshot.rm_name(owner),
        "choices": choices,
        "kind": kind,
        "band": band,
        "leaving": leaving,
        "action": action,
        "sort": sort,
        "order": order,
        "cutoff": snapshot.cutoff,
        "rows": [],
        "columns": listing.columns(kind, lang),
        "has_list": rows is not None,
        "total": 0,
    }
    if rows is not None:
        chosen = sorted_rows(filtered(rows, band, leaving, action), sort, order)
        context |= list_context(rows, chosen, state, kind, lang)
        audit(
            request,
            "/ui/list",
            customer_ids=chosen["customer_id"].tolist(),
            list_id=owner,
            list_kind=kind,
            models=snapshot.versions,
        )
    return render(request, state, "list.html", session=session, **context)


def sorted_rows(rows: pd.DataFrame, sort: str, order: str) -> pd.DataFrame:
    if sort in SORTABLE and sort in rows:
        return rows.sort_values(sort, ascending=order == "asc", kind="stable", na_position="last")
    return rows


def list_context(rows: pd.DataFrame, chosen: pd.DataFrame, state, kind: str, lang: str) -> dict:
    """What the list page shows of a list: its rows as printed (with each customer's last
    contact) and the choices of its filters."""
    snapshot, store = state.snapshot, outcome_store()
    keys = chosen["customer_id"].tolist()
    latest = store.latest([plain_id(k) for k in keys]) if store is not None and keys else {}
    zone = state.config.time_zone
    last = last_contacts(snapshot, latest, keys, snapshot.cutoff, lang, zone)
    return {
        "rows": listing.shown_rows(chosen, config(state), lang, kind, last),
        "total": len(rows),
        "bands": [
            b
            for b in ("high", "medium", "low")
            if "risk_band" in rows and (rows["risk_band"] == b).any()
        ],
        "actions": [(a, text(ACTIONS, a, lang)) for a in sorted(rows["action"].dropna().unique())],
        "has_leaving": "leaving_now" in rows and kind == RETENTION,
        "sorts": listing.sorts(kind, rows, lang),
    }


# ---------------------------------------------------------------- one customer


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer(request: Request, customer_id: str, state: ServingState = State, saved: bool = False):
    session = current(request, state)
    if session is None:
        return to_login()
    if (problem := unready(request, state, session)) is not None:
        return problem
    found = reach(session.key, state.snapshot, customer_id)
    audit(request, "/ui/customers", customer_ids=[asked_id(found, customer_id)])
    if not found.allowed:
        return forbidden(request, state, session)
    if not found.exists:
        return not_found(request, state, session)
    lang = language(request, state)
    context = customer_context(state, found.customer, lang)
    store = outcome_store()
    recorded = store.for_customer(plain_id(found.customer)) if store is not None else []
    context["contacts"] = contact_rows(
        state.snapshot, recorded, found.customer, lang, state.config.time_zone
    )
    context["can_record"] = store is not None
    context["saved"] = saved
    context["form_id"] = uuid.uuid4().hex  # one submission of this form is stored once
    audit(
        request,
        "/ui/customers",
        customer_id=plain_id(found.customer),
        models=state.snapshot.versions,
    )
    return render(request, state, "customer.html", session=session, **context)


def customer_context(state: ServingState, key, lang: str) -> dict:
    """The customer page: the month's answer (what the lists and the API say) in ``lang``,
    with the products held, maturities and history from the features behind it."""
    snapshot = state.snapshot
    bank = config(state)
    said = snapshot.answers([key], [key], state.products)[0]
    info = snapshot.scores.loc[key]
    row = snapshot.features.loc[key]
    held = [
        p
        for p in held_products(row.index)
        if pd.notna(row[holds_column(p)]) and bool(row[holds_column(p)])
    ]
    product = info.get("maturing_product")
    owner = str(info["rm_id"]) if pd.notna(info.get("rm_id")) else None
    return {
        "customer_id": plain_id(key),
        "customer_name": str(info.get("customer_name", "")),
        "owner": owner,
        "owner_name": snapshot.rm_name(owner),
        "tier": bank.tiers.label(info["tier"], lang) if isinstance(info.get("tier"), str) else "",
        **answer_context(said, bank, lang, set(held)),
        "held": [bank.product_label(p, lang) for p in held],
        "maturing_product": bank.product_label(product, lang) if isinstance(product, str) else None,
        "maturing_date": _date(info.get("maturing_date")),
        "maturing_30d": _money(info.get("maturing_30d")),
        **charts(snapshot.history_of(key), lang),
        "channels": [(c, word(CHANNELS, c, lang)) for c in CHANNELS],
        "results": [(c, word(RESULTS, c, lang)) for c in RESULTS],
        "cutoff": snapshot.cutoff,
    }


def charts(history: pd.DataFrame, lang: str) -> dict:
    """The customer's last 12 months of AUM and contribution as two bar charts (none when
    the snapshot has no months for the customer)."""
    if history.empty:
        return {"chart_aum": None, "chart_contribution": None}
    months = [month_label(m, lang) for m in history["month"]]
    unit, latest = word(WORDS, "cny", lang), word(WORDS, "latest", lang)
    drawn = {}
    for name, column, title in (
        ("chart_aum", "aum", "aum_by_month"),
        ("chart_contribution", "contribution", "contribution_by_month"),
    ):
        bars = list(zip(months, (_number(v) for v in history[column]), strict=True))
        drawn[name] = month_chart(bars, unit, word(WORDS, title, lang), latest)
    return drawn


def answer_context(said: dict, bank, lang: str, held: set[str] = frozenset()) -> dict:
    """The facts of an answer as the page prints them; propensities of products not held
    (``held``) only — a product the customer has is nothing to offer."""
    offer, place = said["offer"], said["membership"]
    return {
        "p_churn": _pct(said["churn_probability"]),
        "band": word(WORDS, said["risk_band"], lang),
        "leaving_now": said["leaving_now"],
        "p_upgrade": _pct(said["upgrade_probability"]),
        "saved_value": _money(said["saved_value"]),
        "propensities": [
            (bank.product_label(p, lang), _pct(v))
            for p, v in sorted(said["propensities"].items(), key=lambda item: -item[1])
            if p not in held
        ],
        "reasons": shown_reasons(said, lang),
        "action": text(ACTIONS, said["action"], lang) if said["action"] else None,
        "offer": None
        if offer is None
        else {
            "label": _offer_label(offer["product"], bank, lang),
            "propensity": _pct(offer["propensity"]),
            "amount": _money(offer["amount"]),
            "date": offer["date"],
        },
        "do_not_contact": said["do_not_contact"],
        "open_complaint": said["open_complaint"],
        "place": None
        if place is None
        else {
            "list": place["list_id"],
            "kind": word(WORDS, place["kind"], lang) if place["kind"] else None,
            "rank": place["rank"],
            "control": place["group"] == "control",
        },
    }


@router.post("/customers/{customer_id}/outcomes", response_class=HTMLResponse)
async def record_outcome(request: Request, customer_id: str, state: ServingState = State):
    session = current(request, state)
    if session is None:
        return to_login()
    audit(request, "/ui/outcomes")
    form = await request.form()
    if not csrf_matches(session, form.get("csrf")):
        return csrf_refused(request, state, session)
    if (problem := unready(request, state, session)) is not None:
        return problem
    found = reach(session.key, state.snapshot, customer_id)
    audit(request, "/ui/outcomes", customer_ids=[asked_id(found, customer_id)])
    if not found.allowed:
        return forbidden(request, state, session)
    if not found.exists:
        return not_found(request, state, session)
    wanted, owner = found.customer, found.owner
    store = outcome_store()
    lang = language(request, state)
    if store is None:
        return refuse(
            request,
            state,
            session,
            503,
            word(WORDS, "record", lang),
            word(WORDS, "outcomes_off", lang),
        )
    channel, result = str(form.get("channel", "")), str(form.get("result", ""))
    reached = str(form.get("reached", ""))
    if channel not in CHANNELS or result not in RESULTS or reached not in REACHED:
        asked = ("channel", "reached", "result")  # nothing is chosen for the RM: all three
        return refuse(
            request,
            state,
            session,
            422,
            word(WORDS, "record", lang),
            " / ".join(word(WORDS, field, lang) for field in asked),
        )
    if (problem := too_long(form, lang)) is not None:  # refused whole, never cut
        return refuse(request, state, session, 422, word(WORDS, "record", lang), problem)
    try:
        store.record(
            customer_id=plain_id(wanted),
            rm_id=owner,
            channel=channel,
            reached=reached == "yes",
            result=result,
            next_step=str(form.get("next_step", "")),
            note=str(form.get("note", "")),
            recorded_by=session.key.name,
            recorded_key=session.key.sha256,
            request_id=str(form.get("request_id") or request_id(request))[:REQUEST_ID_CHARS],
        )
    except OutcomeConflict as exc:  # this form was sent before with other content
        return refuse(request, state, session, 409, word(WORDS, "record", lang), str(exc))
    except OutcomeError as exc:  # a field the store refuses
        return refuse(request, state, session, 422, word(WORDS, "record", lang), str(exc))
    audit(request, "/ui/outcomes", customer_id=plain_id(wanted))
    return RedirectResponse(f"/ui/customers/{plain_id(wanted)}?saved=1", status_code=303)


def too_long(form, lang: str) -> str | None:
    """What is too long in an outcome form, naming the limit (the API answers 422 alike)."""
    for field, limit in (("note", NOTE_CHARS), ("next_step", NEXT_STEP_CHARS)):
        given = len(str(form.get(field, "")))
        if given > limit:
            return word(WORDS, "too_long", lang).format(
                field=word(WORDS, field, lang), limit=limit, got=given
            )
    return None


# ---------------------------------------------------------------- downloads


@router.get("/lists/{list_id}.{fmt}")
def download(
    request: Request,
    list_id: str,
    fmt: Literal["csv", "xlsx"],
    state: ServingState = State,
    kind: Literal["retention", "growth"] = RETENTION,
) -> Response:
    session = current(request, state)
    if session is None:
        return to_login()
    owner, allowed = list_owner_for(session, list_id)
    if not allowed:
        audit(request, "/ui/lists", list_id=list_id)
        return forbidden(request, state, session)
    if (problem := unready(request, state, session)) is not None:
        return problem
    name = list_file(owner, kind, fmt)
    path = list_path(state.snapshot.folder / "lists", name, language(request, state))
    if "/" in owner or path is None:
        return not_found(request, state, session)
    scores = state.snapshot.scores  # the file holds the list's members, as retain score cut it
    members = scores.index[(scores["list_id"] == owner) & (scores["list_kind"] == kind)]
    audit(
        request,
        "/ui/lists",
        customer_ids=members.tolist(),
        list_id=owner,
        list_kind=kind,
        file=name,
        models=state.snapshot.versions,
    )
    media = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return FileResponse(path, media_type=media, filename=name)


def list_path(folder: Path, name: str, lang: str) -> Path | None:
    """A list's file in the page's language (``lists/<lang>/``); a snapshot written before
    files were made in every language has one language only, at ``lists/``."""
    for path in (folder / lang / name, folder / name):
        if path.is_file():
            return path
        if path.parent.name == lang and path.parent.is_dir():
            return None  # the language's folder is there without this list: none
    return None


# ---------------------------------------------------------------- formatting


def _with_query(request: Request, **changes) -> str:
    """This page's path and query with ``changes`` applied (for links that keep filters)."""
    params = {**request.query_params, **changes}
    params.pop("saved", None)
    return request.url.path + "?" + urlencode({k: v for k, v in params.items() if v != ""})


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _pct(value) -> str | None:
    number = _number(value)
    return None if number is None else f"{number * 100:.1f}%"


def _money(value) -> str | None:
    number = _number(value)
    return None if number is None else f"{number:,.0f}"


def _date(value) -> str | None:
    return None if value is None or pd.isna(value) else str(pd.Timestamp(value).date())


def _offer_label(offer, bank, lang: str) -> str | None:
    if not isinstance(offer, str):
        return None
    return text(OFFERS, offer, lang) if offer in OFFERS else bank.product_label(offer, lang)
