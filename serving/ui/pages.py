"""The RM page's routes (DESIGN §12): log in, my lists, one customer, record an outcome,
download a list. Same keys, roles, book isolation and audit log as the API.

Every page that shows customers is written to the audit log; a page for somebody else's
customer or list is a 403 page (audited too); no session sends the browser to the login page.
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
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from features.targets import held_products, holds_column
from serving.answer import shown_reasons
from serving.api.access import audit as write_audit
from serving.api.access import may_pull_list, reach
from serving.api.auth import KeyRing
from serving.api.routes import request_id
from serving.api.state import ServingState, plain_id
from serving.lists import GROWTH, RETENTION, list_file
from serving.outcomes import OutcomeConflict, OutcomeError
from serving.texts import ACTIONS, HEADERS, OFFERS, text
from serving.ui.chart import bar_chart
from serving.ui.session import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_HOURS,
    Session,
    Sessions,
    csrf_matches,
)
from serving.ui.words import CHANNELS, RESULTS, WORDS, word

LANGS = ("zh", "en")
SORTABLE = {
    "rank",
    "p_churn",
    "contribution_12m",
    "expected_loss",
    "saved_value",
    "value_added",
    "offer_propensity",
    "tier",
    "risk_band",
}
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)


def serving_state() -> ServingState:
    """The worker's loaded state (the BentoML service instance owns it)."""
    return bentoml.get_current_service().state


@cache
def _sessions(keys: KeyRing) -> Sessions:
    return Sessions(keys)


def sessions(state: ServingState) -> Sessions:
    return _sessions(state.keys)


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
            "switch": _with_query(request, lang="en" if lang == "zh" else "zh"),
            **context,
        },
        status_code=status,
    )
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, samesite="strict", httponly=True)
    started = getattr(request.state, "started", None)
    if started is not None:
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
    return response


def refuse(request, state, session, status: int, title: str, body: str) -> HTMLResponse:
    return render(request, state, "error.html", status, session, title=title, message=body)


def audit(
    state, session: Session, request: Request, endpoint: str, count: int, status=200, **extra
) -> None:
    models = state.snapshot.versions if state.snapshot and status == 200 else None
    write_audit(
        state.audit,
        session.key,
        endpoint,
        request_id(request),
        status,
        customers=count,
        models=models,
        **extra,
    )


def current(request: Request, state: ServingState) -> Session | None:
    request.state.started = time.perf_counter()
    return sessions(state).read(request.cookies.get(SESSION_COOKIE))


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


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, state: ServingState = State, failed=False):
    cookie, nonce = sessions(state).login_nonce()
    response = render(
        request, state, "login.html", 401 if failed else 200, csrf=nonce, failed=failed
    )
    response.set_cookie(
        LOGIN_COOKIE, cookie, max_age=3600, httponly=True, samesite="strict", path="/ui"
    )
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
    key = state.keys.identify(f"Bearer {str(form.get('key', '')).strip()}")
    if key is None:
        return login_page(request, state, failed=True)
    response = RedirectResponse("/ui/list", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        store.start(key),
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        path="/ui",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout")
async def logout(request: Request, state: ServingState = State):
    session = current(request, state)
    form = await request.form()
    if session is None:
        return to_login()
    if not csrf_matches(session, form.get("csrf")):
        return csrf_refused(request, state, session)
    response = to_login()
    response.delete_cookie(SESSION_COOKIE, path="/ui")
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


def shown_rows(rows: pd.DataFrame, state: ServingState, lang: str) -> list[dict]:
    """The rows as the page prints them: labels in ``lang``, % and whole yuan."""
    bank = config(state)
    out = []
    for r in rows.to_dict("records"):
        offer = r.get("next_best_offer", r.get("growth_offer"))
        out.append(
            {
                "rank": int(r["rank"]),
                "customer_id": plain_id(r["customer_id"]),
                "customer_name": str(r.get("customer_name", "")),
                "tier": bank.tiers.label(r["tier"], lang) if isinstance(r.get("tier"), str) else "",
                "risk_band": word(WORDS, r["risk_band"], lang)
                if isinstance(r.get("risk_band"), str)
                else None,
                "band_code": r.get("risk_band"),
                "leaving_now": bool(r["leaving_now"]) if pd.notna(r.get("leaving_now")) else None,
                "p_churn": _pct(r.get("p_churn")),
                "contribution_12m": _money(r.get("contribution_12m")),
                "expected_loss": _money(r.get("expected_loss")),
                "saved_value": _money(r.get("saved_value")),
                "value_added": _money(r.get("value_added")),
                "offer": _offer_label(offer, bank, lang),
                "offer_propensity": _pct(r.get("offer_propensity")),
                "reasons": [
                    t
                    for t in (r.get("reason_1"), r.get("reason_2"), r.get("reason_3"))
                    if isinstance(t, str)
                ],
                "action": text(ACTIONS, str(r.get("action", "")), lang),
            }
        )
    return out


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
        audit(state, session, request, "/ui/list", 0, 403, list_rm=rm_id)
        return forbidden(request, state, session)
    lang = language(request, state)
    snapshot = state.snapshot
    choices = sorted(snapshot.rms["rm_id"].astype(str)) if session.key.role != "rm" else []
    rows = list_rows(state, owner, kind, lang) if owner else None
    context = {
        "owner": owner,
        "choices": choices,
        "kind": kind,
        "band": band,
        "leaving": leaving,
        "action": action,
        "sort": sort,
        "order": order,
        "cutoff": snapshot.cutoff,
        "rows": [],
        "columns": [],
        "bands": [],
        "actions": [],
        "has_list": rows is not None,
        "total": 0,
    }
    if rows is not None:
        context["bands"] = [
            b
            for b in ("high", "medium", "low")
            if "risk_band" in rows and (rows["risk_band"] == b).any()
        ]
        context["actions"] = [
            (a, text(ACTIONS, a, lang)) for a in sorted(rows["action"].dropna().unique())
        ]
        context["has_leaving"] = "leaving_now" in rows
        chosen = filtered(rows, band, leaving, action)
        if sort in SORTABLE and sort in chosen:
            chosen = chosen.sort_values(
                sort, ascending=order == "asc", kind="stable", na_position="last"
            )
        context["rows"] = shown_rows(chosen, state, lang)
        context["total"] = len(rows)
        context["columns"] = list_columns(rows, kind, lang)
        audit(state, session, request, "/ui/list", len(chosen), list_rm=owner, list_kind=kind)
    return render(request, state, "list.html", session=session, **context)


def list_columns(rows: pd.DataFrame, kind: str, lang: str) -> list[tuple[str, str, bool]]:
    """(key, header, sortable) of the columns this list has."""
    keys = ["rank", "customer_name", "tier"]
    keys += [c for c in ("risk_band", "leaving_now") if c in rows]
    if kind == "growth":
        keys += ["p_churn", "value_added", "offer", "offer_propensity", "reasons", "action"]
    else:
        ranked = "saved_value" in rows and rows["saved_value"].notna().any()
        keys += [
            "p_churn",
            "contribution_12m",
            "expected_loss",
            *(["saved_value"] if ranked else []),
            "reasons",
            "offer",
            "offer_propensity",
            "action",
        ]
    headers = {
        "offer": "growth_offer" if kind == "growth" else "next_best_offer",
        "reasons": "reason_1",
    }
    out = []
    for key in keys:
        label = (
            word(WORDS, "reasons", lang)
            if key == "reasons"
            else text(HEADERS, headers.get(key, key), lang)
        )
        out.append((key, label, key in SORTABLE and key in rows))
    return out


# ---------------------------------------------------------------- one customer


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer(request: Request, customer_id: str, state: ServingState = State, saved: bool = False):
    session = current(request, state)
    if session is None:
        return to_login()
    if (problem := unready(request, state, session)) is not None:
        return problem
    found = reach(session.key, state.snapshot, customer_id)
    if not found.allowed:
        audit(state, session, request, "/ui/customers", 1, 403)
        return forbidden(request, state, session)
    if not found.exists:
        return not_found(request, state, session)
    lang = language(request, state)
    context = customer_context(state, found.customer, lang)
    store = outcome_store()
    context["contacts"] = contacts(store, plain_id(found.customer), lang) if store else None
    context["saved"] = saved
    context["form_id"] = uuid.uuid4().hex  # one submission of this form is stored once
    audit(state, session, request, "/ui/customers", 1, customer_id=plain_id(found.customer))
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
        bank.product_label(p, lang)
        for p in held_products(row.index)
        if pd.notna(row[holds_column(p)]) and bool(row[holds_column(p)])
    ]
    product = info.get("maturing_product")
    history = [
        (word(WORDS, name, lang), _number(row.get(name)))
        for name in ("aum_avg_12m", "aum_avg_3m", "aum_avg_1m")
    ]
    contribution = [(word(WORDS, "contribution_12m", lang), _number(row.get("contribution_12m")))]
    unit = word(WORDS, "cny", lang)
    return {
        "customer_id": plain_id(key),
        "customer_name": str(info.get("customer_name", "")),
        "owner": str(info["rm_id"]) if pd.notna(info.get("rm_id")) else None,
        "tier": bank.tiers.label(info["tier"], lang) if isinstance(info.get("tier"), str) else "",
        **answer_context(said, bank, lang),
        "held": held,
        "maturing_product": bank.product_label(product, lang) if isinstance(product, str) else None,
        "maturing_date": _date(info.get("maturing_date")),
        "maturing_30d": _money(info.get("maturing_30d")),
        "chart_aum": bar_chart(history, unit, word(WORDS, "history", lang)),
        "chart_contribution": bar_chart(contribution, unit, word(WORDS, "contribution_12m", lang)),
        "channels": [(c, word(CHANNELS, c, lang)) for c in CHANNELS],
        "results": [(c, word(RESULTS, c, lang)) for c in RESULTS],
        "cutoff": snapshot.cutoff,
    }


def answer_context(said: dict, bank, lang: str) -> dict:
    """The facts of an answer as the page prints them."""
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


def contacts(store, customer_id, lang: str) -> list[dict]:
    """Past contacts, newest first, as the page prints them."""
    return [
        {
            "time": o.recorded_at[:16].replace("T", " "),
            "channel": word(CHANNELS, o.channel, lang),
            "reached": word(WORDS, "yes" if o.reached else "no", lang),
            "result": word(RESULTS, o.result, lang),
            "next_step": o.next_step,
            "note": o.note,
            "by": o.recorded_by,
        }
        for o in store.for_customer(customer_id)
    ]


@router.post("/customers/{customer_id}/outcomes", response_class=HTMLResponse)
async def record_outcome(request: Request, customer_id: str, state: ServingState = State):
    session = current(request, state)
    if session is None:
        return to_login()
    form = await request.form()
    if not csrf_matches(session, form.get("csrf")):
        return csrf_refused(request, state, session)
    if (problem := unready(request, state, session)) is not None:
        return problem
    found = reach(session.key, state.snapshot, customer_id)
    if not found.allowed:
        audit(state, session, request, "/ui/outcomes", 1, 403)
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
    if channel not in CHANNELS or result not in RESULTS:
        return refuse(
            request,
            state,
            session,
            422,
            word(WORDS, "record", lang),
            f"{word(WORDS, 'channel', lang)} / {word(WORDS, 'result', lang)}",
        )
    try:
        store.record(
            customer_id=plain_id(wanted),
            rm_id=owner,
            channel=channel,
            reached=form.get("reached") == "yes",
            result=result,
            next_step=str(form.get("next_step", ""))[:200],
            note=str(form.get("note", ""))[:500],
            recorded_by=session.key.name,
            recorded_key=session.key.sha256,
            request_id=str(form.get("request_id") or request_id(request))[:64],
        )
    except OutcomeConflict as exc:  # this form was sent before with other content
        return refuse(request, state, session, 409, word(WORDS, "record", lang), str(exc))
    except OutcomeError as exc:  # a field the store refuses
        return refuse(request, state, session, 422, word(WORDS, "record", lang), str(exc))
    audit(state, session, request, "/ui/outcomes", 1, customer_id=plain_id(wanted))
    return RedirectResponse(f"/ui/customers/{plain_id(wanted)}?saved=1", status_code=303)


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
        audit(state, session, request, "/ui/lists", 0, 403, list_rm=list_id)
        return forbidden(request, state, session)
    if (problem := unready(request, state, session)) is not None:
        return problem
    name = list_file(owner, kind, fmt)
    path = state.snapshot.folder / "lists" / name
    if "/" in owner or not path.is_file():
        return not_found(request, state, session)
    rows = max(0, sum(1 for _ in path.open("rb")) - 1) if fmt == "csv" else None
    audit(state, session, request, "/ui/lists", rows or 0, list_rm=owner, file=name)
    media = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return FileResponse(path, media_type=media, filename=name)


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
