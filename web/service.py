"""What the API and the dashboard both do: look up, present and start investigations.

Starting anything goes through `agents.flows`, so the web has the same
idempotency as Slack; this module only turns web input into flow calls and
flow errors into API errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from agents import flows
from agents.report import Report
from core.alert import Alert, AlertError, alert_from_payload
from core.catalog import CatalogError, parse_duration
from core.models import FollowUp, Investigation, JiraLink, Source, Status, TicketAction
from core.queue import QueueUnavailable
from core.runtime import get_store
from core.settings import get_settings
from core.store import IdempotencyClaim, IdempotencyKeyReused, InvestigationFilter, decode_cursor
from integrations.catalog import get_catalog
from web.api.schemas import (
    CreateInvestigation,
    FollowUpOut,
    InvestigationCreated,
    InvestigationDetail,
    InvestigationSummary,
    JiraOut,
    Links,
    NotificationOut,
    ProgressEventOut,
    TicketActionOut,
)
from web.errors import ApiError

MAX_LOOKBACK = timedelta(days=14)
FUTURE_SLACK = timedelta(minutes=5)
WAITING_FOR_QUEUE = "the job queue is not answering; the investigation is recorded and will run when the queue is back"


def links(investigation_id: str) -> Links:
    base = get_settings().public_url.rstrip("/")
    return Links(api=f"{base}/api/v1/investigations/{investigation_id}", dashboard=f"{base}/investigations/{investigation_id}")


def require_investigation(investigation_id: str) -> Investigation:
    row = get_store().get(investigation_id) if len(investigation_id) <= 32 else None
    if row is None:
        raise ApiError("INVESTIGATION_NOT_FOUND", f"no investigation {investigation_id}")
    return row


def slack_thread_url(row: Investigation) -> str | None:
    if not (row.slack_channel and row.slack_thread_ts):
        return None
    return f"https://slack.com/archives/{row.slack_channel}/p{row.slack_thread_ts.replace('.', '')}"


def summary(row: Investigation) -> InvestigationSummary:
    return InvestigationSummary(
        id=row.id,
        status=Status(row.status),
        service=row.service,
        title=row.title,
        source=Source(row.source),
        category=row.category,
        confidence=row.confidence,
        parent_id=row.parent_id,
        created_at=_aware(row.created_at),
        finished_at=_aware(row.finished_at) if row.finished_at else None,
        links=links(row.id),
    )


def detail(row: Investigation) -> InvestigationDetail:
    store = get_store()
    jira = store.get_jira(row.id)
    return InvestigationDetail(
        **summary(row).model_dump(),
        window_start=_aware(row.window_start),
        window_end=_aware(row.window_end),
        at=_aware(row.at),
        alert=row.alert,
        error=row.error,
        slack_thread_url=slack_thread_url(row),
        jira=jira_out(jira) if jira else None,
        progress=[
            ProgressEventOut(id=e.id or 0, at=_aware(e.at), stage=e.stage, message=e.message, milestone=e.milestone, data=e.data)
            for e in store.progress(row.id)
        ],
        follow_ups=[follow_up_out(f) for f in store.follow_ups(row.id)],
        report=Report.model_validate(row.report) if row.report else None,
        resolution=row.resolution,
        resolved_at=_aware(row.resolved_at) if row.resolved_at else None,
        resolved_by=row.resolved_by,
        notifications=[
            NotificationOut(
                target=n.label,
                status=n.status,
                attempts=n.attempts,
                error=n.error,
                delivered_at=_aware(n.delivered_at) if n.delivered_at else None,
            )
            for n in store.notifications(row.id)
        ],
        tickets=[ticket_out(t) for t in store.ticket_actions(row.id)],
    )


def ticket_out(row: TicketAction) -> TicketActionOut:
    return TicketActionOut(tool=row.tool, action=row.action, status=row.status, key=row.key or row.target, url=row.url, error=row.error)


def jira_out(link: JiraLink) -> JiraOut:
    return JiraOut(status=link.status, key=link.key, url=link.url)


def follow_up_out(row: FollowUp) -> FollowUpOut:
    assert row.id is not None
    return FollowUpOut(
        id=row.id,
        question=row.question,
        status=row.status,
        answer=row.answer,
        answered_by=row.answered_by,
        asked_by=row.asked_by,
        created_at=_aware(row.created_at),
        answered_at=_aware(row.answered_at) if row.answered_at else None,
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def list_page(flt: InvestigationFilter, *, limit: int, cursor: str | None) -> tuple[list[Investigation], str | None]:
    if cursor:
        try:
            decode_cursor(cursor)
        except ValueError as exc:
            raise ApiError("INVALID_CURSOR", "the cursor is not one this API returned") from exc
    return get_store().list_investigations(flt, limit=limit, cursor=cursor)


def idempotency_claim(owner: str, key: str | None, route: str, body: BaseModel | None = None) -> IdempotencyClaim | None:
    """The claim a request's `Idempotency-Key` makes; its hash covers the route (with its ids) and the parsed body.

    The parsed body, not the bytes: a client re-serialising the same request (key order, spacing) is the same request.
    """
    if key is None:
        return None
    document = {"route": route, "body": body.model_dump(mode="json") if body is not None else None}
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return IdempotencyClaim(owner=owner, key=key, request_hash=digest)


def question_dedupe_key(claim: IdempotencyClaim) -> str:
    """The follow-up's unique key for a client's key: scoped by client, and bounded to its column whatever the key's length."""
    return "api:" + hashlib.sha256(f"{claim.owner}\n{claim.key}".encode()).hexdigest()[:56]


@contextmanager
def idempotency_errors() -> Iterator[None]:
    try:
        yield
    except IdempotencyKeyReused as exc:
        raise ApiError(
            "IDEMPOTENCY_KEY_REUSED", f"Idempotency-Key {exc} was already used for a different request; use a new key for a new request"
        ) from exc


def created(row: Investigation, *, queued: bool) -> InvestigationCreated:
    return InvestigationCreated(
        id=row.id,
        status=Status(row.status),
        parent_id=row.parent_id,
        links=links(row.id),
        queued=queued,
        message=None if queued else WAITING_FOR_QUEUE,
    )


@contextmanager
def queue_errors() -> Iterator[None]:
    try:
        yield
    except QueueUnavailable as exc:
        raise ApiError("QUEUE_UNAVAILABLE", "the job queue is not answering; try again in a minute") from exc


def start(body: CreateInvestigation, *, requested_by: str, idempotency: IdempotencyClaim | None = None) -> InvestigationCreated:
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        raise ApiError("UNKNOWN_SERVICE", f"the service catalog cannot be read: {exc}") from exc
    service = body.service.strip()
    if catalog.names():
        resolved = catalog.resolve(service)
        if resolved is None:
            hint = catalog.close_matches(service)
            raise ApiError(
                "UNKNOWN_SERVICE",
                f"unknown service '{service}'" + (f"; did you mean {', '.join(hint)}?" if hint else ""),
                details={"known": catalog.names()[:50]},
            )
        service = resolved
    now = datetime.now(UTC)
    at = _aware(body.at) if body.at else None
    if at is not None and at > now + FUTURE_SLACK:
        raise ApiError("VALIDATION_ERROR", "at: lies in the future")
    since_s = parse_duration(body.since) if body.since else None
    if since_s is not None and not 0 < since_s <= MAX_LOOKBACK.total_seconds():
        raise ApiError("VALIDATION_ERROR", f"since: must be between 1s and {MAX_LOOKBACK.days}d")
    window = flows.window_for(catalog, at=at, since_s=since_s, now=now)
    alert = _alert(body, service, window.at)
    with idempotency_errors():
        try:
            row, fresh = flows.open_investigation(
                alert=alert, service=service, source=Source.api, window=window, requested_by=requested_by, idempotency=idempotency
            )
        except flows.RecordedNotQueued as waiting:
            # A 503 here would invite the client to retry and record a second investigation; the sweep runs this one.
            return created(waiting.investigation, queued=False)
    return created(row, queued=fresh or flows.on_queue(row))


def rerun(row: Investigation, *, requested_by: str, idempotency: IdempotencyClaim | None = None) -> InvestigationCreated:
    with idempotency_errors():
        try:
            new = flows.rerun(row.id, requested_by=requested_by, idempotency=idempotency)
        except flows.RecordedNotQueued as waiting:
            return created(waiting.investigation, queued=False)
    return created(new, queued=flows.on_queue(new))


def _alert(body: CreateInvestigation, service: str, at: datetime) -> Alert:
    base = Alert(title=body.alert_text[:500], summary=body.alert_text, service=service, created_at=at, source=Source.api.value)
    if not body.alert:
        return base
    payload: dict[str, Any] = {**body.alert, "service": service}
    try:
        parsed = alert_from_payload(payload, source=Source.api.value)
    except AlertError as exc:
        raise ApiError("VALIDATION_ERROR", f"alert: {exc}") from exc
    # Our words and window win; the payload contributes its link and details.
    return base.model_copy(update={"url": parsed.url, "details": parsed.details, "urgency": parsed.urgency})


def require_finished(row: Investigation, *, for_what: str) -> None:
    if not Status(row.status).finished:
        raise ApiError("INVESTIGATION_RUNNING", f"{row.id} is still {row.status}; {for_what} once it has finished")
