"""/api/v1/investigations: start, list, read, report, ask, Jira, other incident tools, re-run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from agents import flows, ticketing
from agents.render import render
from agents.report import Category, Report
from core.models import Source, Status
from core.runtime import get_store
from core.settings import get_settings
from core.store import InvestigationFilter
from web import service
from web.api.schemas import (
    NO_NUL,
    AskQuestion,
    CreateInvestigation,
    FollowUpOut,
    InvestigationCreated,
    InvestigationDetail,
    InvestigationPage,
    JiraRequested,
    TicketRequested,
)
from web.auth import Principal, require
from web.context import request_id_of
from web.errors import ERROR_RESPONSES, ApiError

# The full path lives on the router itself (not on a parent's prefix) so the matched route names its whole
# template, which the latency metric and the span use as their `route` label.
router = APIRouter(prefix="/api/v1/investigations", tags=["investigations"], responses=ERROR_RESPONSES)

Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
InvestigationId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
ReportFormat = Literal["json", "markdown", "html"]
ToolName = Annotated[str, Path(pattern=r"^[a-z]{1,32}$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=64,
        pattern=NO_NUL,
        description="Repeat it to make a retried request harmless: the same key with the same request gets the same answer, "
        "with another request a 409 IDEMPOTENCY_KEY_REUSED.",
    ),
]

_ACCEPT = (("text/markdown", "markdown"), ("text/html", "html"), ("application/json", "json"))


@router.post("", status_code=202, response_model=InvestigationCreated, summary="Start an investigation")
def create_investigation(body: CreateInvestigation, principal: Writer, idempotency_key: IdempotencyKey = None) -> InvestigationCreated:
    claim = service.idempotency_claim(principal.name, idempotency_key, "POST /api/v1/investigations", body)
    return service.start(body, requested_by=f"api:{principal.name}", idempotency=claim)


@router.get("", response_model=InvestigationPage, summary="List investigations, newest first")
def list_investigations(
    _: Reader,
    service_name: Annotated[str | None, Query(alias="service", max_length=200, pattern=NO_NUL)] = None,
    status: Status | None = None,
    category: Category | None = None,
    source: Source | None = None,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Created before (ISO 8601).")] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Words in the title or service, or an investigation id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> InvestigationPage:
    flt = InvestigationFilter(
        service=service_name, status=status, category=category, source=source, since=since, until=until, text=q or None
    )
    rows, next_cursor = service.list_page(flt, limit=limit, cursor=cursor)
    return InvestigationPage(items=[service.summary(r) for r in rows], next_cursor=next_cursor)


@router.get("/{investigation_id}", response_model=InvestigationDetail, summary="One investigation: status, progress, report")
def get_investigation(investigation_id: InvestigationId, _: Reader) -> InvestigationDetail:
    return service.detail(service.require_investigation(investigation_id))


@router.get(
    "/{investigation_id}/report",
    summary="The report as JSON, Markdown or HTML (`format`, else the Accept header)",
    response_model=Report,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}}},
)
def get_report(
    investigation_id: InvestigationId,
    _: Reader,
    fmt: Annotated[ReportFormat | None, Query(alias="format")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    row = service.require_investigation(investigation_id)
    if not row.report:
        raise ApiError("REPORT_NOT_READY", f"{row.id} is {row.status}; the report is not ready yet")
    chosen = fmt or _negotiate(accept)
    if chosen == "json":
        return JSONResponse(Report.model_validate(row.report).to_json_dict())
    context: dict[str, Any] = {"report_url": service.links(row.id).dashboard, "thread_url": service.slack_thread_url(row)}
    text = render(row.report, chosen, override_dir=get_settings().templates_dir, standalone=True, **context)
    if chosen == "html":
        return HTMLResponse(text)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


def _negotiate(accept: str | None) -> ReportFormat:
    for media, fmt in _ACCEPT:
        if accept and media in accept:
            return fmt  # type: ignore[return-value]
    return "json"


@router.post("/{investigation_id}/questions", status_code=202, response_model=FollowUpOut, summary="Ask a follow-up question")
def ask_question(
    investigation_id: InvestigationId,
    body: AskQuestion,
    principal: Writer,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> FollowUpOut:
    row = service.require_investigation(investigation_id)
    claim = service.idempotency_claim(principal.name, idempotency_key, f"POST /api/v1/investigations/{row.id}/questions", body)
    if claim is not None:
        with service.idempotency_errors():
            get_store().claim_idempotency_key(claim, investigation_id=row.id)
    dedupe_key = service.question_dedupe_key(claim) if claim else f"api:{request_id_of(request)}"
    with service.queue_errors():
        follow_up = flows.ask(row.id, question=body.question, dedupe_key=dedupe_key, asked_by=f"api:{principal.name}")
    if follow_up is None:
        follow_up = next(f for f in get_store().follow_ups(row.id) if f.dedupe_key == dedupe_key)
    return service.follow_up_out(follow_up)


@router.post("/{investigation_id}/jira", status_code=202, response_model=JiraRequested, summary="Request the Jira ticket (once)")
def request_jira(investigation_id: InvestigationId, principal: Writer, idempotency_key: IdempotencyKey = None) -> JiraRequested:
    row = service.require_investigation(investigation_id)
    if not row.report:
        raise ApiError("REPORT_NOT_READY", "a ticket is made from the report; wait until it is ready")
    claim = service.idempotency_claim(principal.name, idempotency_key, f"POST /api/v1/investigations/{row.id}/jira")
    if claim is not None:
        # The ticket is one per investigation already; the key only has to refuse being reused for another one.
        with service.idempotency_errors():
            get_store().claim_idempotency_key(claim, investigation_id=row.id)
    with service.queue_errors():
        link, created = flows.request_jira(row.id, requested_by=f"api:{principal.name}")
    return JiraRequested(investigation_id=row.id, created=created, status=link.status, key=link.key, url=link.url)


@router.post(
    "/{investigation_id}/tickets/{tool}",
    status_code=202,
    response_model=TicketRequested,
    summary="Request the investigation's incident in a tool that files them (ServiceNow), once",
)
def request_ticket(
    investigation_id: InvestigationId, tool: Annotated[str, Path(pattern=r"^[a-z]{1,32}$")], principal: Writer
) -> TicketRequested:
    row = service.require_investigation(investigation_id)
    if not row.report:
        raise ApiError("REPORT_NOT_READY", "an incident is filed from the report; wait until it is ready")
    if tool not in {b.tool for b in ticketing.ticket_buttons(row.id)}:
        raise ApiError("NOT_FOUND", f"no configured incident tool '{tool}' files incidents")
    with service.queue_errors():
        claim, created = ticketing.request_ticket(row.id, tool, requested_by=f"api:{principal.name}")
    return TicketRequested(
        investigation_id=row.id,
        created=created,
        tool=tool,
        action=claim.action,
        status=claim.status,
        key=claim.key,
        url=claim.url,
        error=claim.error,
    )


@router.post("/{investigation_id}/rerun", status_code=202, response_model=InvestigationCreated, summary="Run the investigation again")
def rerun(investigation_id: InvestigationId, principal: Writer, idempotency_key: IdempotencyKey = None) -> InvestigationCreated:
    row = service.require_investigation(investigation_id)
    service.require_finished(row, for_what="re-run it")
    claim = service.idempotency_claim(principal.name, idempotency_key, f"POST /api/v1/investigations/{row.id}/rerun")
    return service.rerun(row, requested_by=f"api:{principal.name}", idempotency=claim)
