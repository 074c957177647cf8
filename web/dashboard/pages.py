"""Dashboard pages. Same data and flows as the API; a session cookie instead of a bearer key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from agents import flows, ticketing
from agents.render import render
from agents.report import CATEGORIES
from core.models import Status
from core.runtime import get_store
from core.settings import get_settings
from core.store import InvestigationFilter
from integrations.catalog import get_catalog
from web import service
from web.auth import Principal
from web.errors import ApiError

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
PAGE_SIZE = 30
AGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}

router = APIRouter(include_in_schema=False)


def _ago(value: datetime | None) -> str:
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def _utc(value: datetime | None) -> str:
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(ago=_ago, utc=_utc, human=lambda v: (v or "").replace("_", " "))


def _viewer(request: Request) -> Principal | None:
    key_id = request.app.state.sessions.key_id(request)
    if key_id is None:
        return None
    try:
        principal: Principal = request.app.state.key_verifier.for_key_id(key_id)
    except ApiError:
        return None
    return principal


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


def _page(request: Request, name: str, viewer: Principal | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    base = {"viewer": viewer, "can_write": bool(viewer and viewer.can("write")), "csrf": request.app.state.sessions.csrf_token(request)}
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(target: str | None) -> str:
    # Only same-site paths: a login link must not be able to send people elsewhere.
    return target if target and target.startswith("/") and not target.startswith("//") else "/investigations"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/investigations", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _page(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form(max_length=200)], next: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        principal = await run_in_threadpool(request.app.state.key_verifier.verify, key.strip())
    except ApiError as exc:
        return _page(request, "login.html", None, status_code=401, next=_safe_next(next), error=exc.message)
    response = RedirectResponse(_safe_next(next), status_code=303)
    request.app.state.sessions.start(response, principal.key_id)
    return response


@router.post("/logout")
def logout(request: Request) -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    request.app.state.sessions.end(response)
    return response


@router.get("/investigations")
def list_page(
    request: Request,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    service_name: Annotated[str | None, Query(alias="service", max_length=200, pattern=r"^[^\x00]*$")] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    age: Annotated[str | None, Query(max_length=8)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    viewer = _viewer(request)
    if viewer is None:
        return _to_login(request)
    chosen = {"q": q or "", "service": service_name or "", "status": status or "", "category": category or "", "age": age or ""}
    since = datetime.now(UTC) - AGES[age] if age in AGES else None
    flt = InvestigationFilter(service=service_name or None, status=status or None, category=category or None, since=since, text=q or None)
    rows, next_cursor = service.list_page(flt, limit=PAGE_SIZE, cursor=cursor or None)
    filters = {k: v for k, v in chosen.items() if v}
    older = f"/investigations?{urlencode({**filters, 'cursor': next_cursor})}" if next_cursor else None
    try:
        services = get_catalog().names()
    except ValueError:
        services = []
    return _page(
        request,
        "list.html",
        viewer,
        rows=rows,
        chosen=chosen,
        older=older,
        services=services,
        statuses=[s.value for s in Status],
        categories=CATEGORIES,
        ages=list(AGES),
        paged=bool(cursor),
    )


@router.get("/investigations/{investigation_id}")
def detail_page(request: Request, investigation_id: str, notice: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    viewer = _viewer(request)
    if viewer is None:
        return _to_login(request)
    try:
        row = service.require_investigation(investigation_id)
    except ApiError:
        return _page(request, "missing.html", viewer, status_code=404, investigation_id=investigation_id)
    store = get_store()
    thread_url = service.slack_thread_url(row)
    report_html = None
    if row.report:
        rendered = render(
            row.report,
            "html",
            override_dir=get_settings().templates_dir,
            standalone=False,
            report_url=service.links(row.id).dashboard,
            thread_url=thread_url,
        )
        report_html = Markup(rendered)  # noqa: S704  (our template, autoescaped; the report's text is escaped inside it)
    return _page(
        request,
        "detail.html",
        viewer,
        row=row,
        finished=Status(row.status).finished,
        events=store.progress(row.id),
        follow_ups=store.follow_ups(row.id),
        jira=store.get_jira(row.id),
        notifications=store.notifications(row.id),
        tickets=store.ticket_actions(row.id),
        ticket_buttons=ticketing.ticket_buttons(row.id) if row.report else [],
        thread_url=thread_url,
        report_html=report_html,
        parent=row.parent_id,
        notice=notice,
        links=service.links(row.id),
    )


def _action_guard(request: Request, csrf: str) -> Principal | Response:
    viewer = _viewer(request)
    if viewer is None:
        return _to_login(request)
    if not request.app.state.sessions.csrf_ok(request, csrf):
        raise ApiError("CSRF_FAILED", "the form is stale; reload the page and try again")
    if not viewer.can("write"):
        raise ApiError("INSUFFICIENT_SCOPE", "this dashboard session is read-only (a 'read' key)")
    return viewer


def _back(investigation_id: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/investigations/{investigation_id}?{urlencode({'notice': notice})}", status_code=303)


@router.post("/investigations/{investigation_id}/rerun")
def rerun_action(request: Request, investigation_id: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    viewer = _action_guard(request, csrf)
    if not isinstance(viewer, Principal):
        return viewer
    row = service.require_investigation(investigation_id)
    service.require_finished(row, for_what="re-run it")
    with service.queue_errors():
        new = flows.rerun(row.id, requested_by=f"dashboard:{viewer.name}")
    return _back(new.id, f"Re-run of {row.id} queued.")


@router.post("/investigations/{investigation_id}/jira")
def jira_action(request: Request, investigation_id: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    viewer = _action_guard(request, csrf)
    if not isinstance(viewer, Principal):
        return viewer
    row = service.require_investigation(investigation_id)
    if not row.report:
        raise ApiError("REPORT_NOT_READY", "a ticket is made from the report; wait until it is ready")
    with service.queue_errors():
        link, created = flows.request_jira(row.id, requested_by=f"dashboard:{viewer.name}")
    notice = "Jira ticket requested." if created else f"A Jira ticket was already requested ({link.key or link.status})."
    return _back(row.id, notice)


@router.post("/investigations/{investigation_id}/tickets/{tool}")
def ticket_action(request: Request, investigation_id: str, tool: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    viewer = _action_guard(request, csrf)
    if not isinstance(viewer, Principal):
        return viewer
    row = service.require_investigation(investigation_id)
    if not row.report:
        raise ApiError("REPORT_NOT_READY", "an incident is filed from the report; wait until it is ready")
    if tool not in {b.tool for b in ticketing.ticket_buttons(row.id)}:
        raise ApiError("NOT_FOUND", f"no configured incident tool '{tool}' files incidents")
    with service.queue_errors():
        claim, created = ticketing.request_ticket(row.id, tool, requested_by=f"dashboard:{viewer.name}")
    label = ticketing.tool_label(tool)
    notice = f"{label} incident requested." if created else f"A {label} incident was already requested ({claim.key or claim.status})."
    return _back(row.id, notice)


@router.post("/investigations/{investigation_id}/ask")
def ask_action(
    request: Request,
    investigation_id: str,
    csrf: Annotated[str, Form(max_length=64)],
    question: Annotated[str, Form(min_length=1, max_length=4000, pattern=r"^[^\x00]*$")],
) -> Response:
    viewer = _action_guard(request, csrf)
    if not isinstance(viewer, Principal):
        return viewer
    row = service.require_investigation(investigation_id)
    with service.queue_errors():
        flows.ask(row.id, question=question, dedupe_key=f"dashboard:{request.state.request_id}", asked_by=f"dashboard:{viewer.name}")
    return _back(row.id, "Question queued; the answer appears below.")
