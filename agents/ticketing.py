"""Incident tools around an investigation: read the incident an alert names, write the report back, file on request.

- `enrich` runs before the evidence is gathered: each tool that can read and whose incident the alert names
  (a PagerDuty incident, a ServiceNow INC number) is asked within INCIDENT_READ_DEADLINE_S; what it says (custom
  details, owners, timeline) joins the alert, so it reaches the evidence's word matching, timeline and report.
- `write_back` runs once a report is stored: one queued note per tool and incident. The claim row
  (`Store.claim_ticket_action`) lets one job exist per (investigation, tool); the investigation's marker in the
  note's text lets a retried job see the note a killed attempt already added.
- `request_ticket` / `create_incident` are the "Create ServiceNow incident" button, the same way as Create Jira.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC
from types import TracebackType
from typing import Any, cast

import structlog
from rq import get_current_job

from agents.jira_ticket import ticket_for
from agents.render import render
from core.alert import INCIDENT_TIMELINE, INCIDENT_TOOLS, Alert
from core.degraded import Degradation
from core.logging import bind_investigation, unbind_investigation
from core.models import Investigation, TicketAction
from core.progress import Progress
from core.queue import AlreadyQueued, QueueUnavailable, enqueue, redis_alive
from core.redaction import redact_text
from core.runtime import get_redis, get_store
from core.settings import Settings, get_settings
from integrations.incidents.base import Capability, IncidentFacts, Note, NoteWriter, TrackerError
from integrations.incidents.trackers import button_trackers, configured_tool, label_of, note_writers, readers, tracker

log = structlog.get_logger(__name__)

ADD_NOTE = "agents.ticketing.add_note"
ON_NOTE_FAILURE = "agents.ticketing.on_note_failure"
CREATE_INCIDENT = "agents.ticketing.create_incident"
NOTE = "note"
CREATE = "create"
# The progress stage of writes to incident tools; the Slack poster answers "create" ones in the thread.
STAGE = "ticket"
RETRIES = 3
SUMMARY_MAX = 2000
# ServiceNow urgency from the alert's: 1 high, 3 low.
URGENCY_BY_TOOL = {"servicenow": {"High": "1", "Low": "3"}}


def marker(investigation_id: str) -> str:
    return f"incident-responder:{investigation_id}"


def _progress(investigation_id: str) -> Progress:
    redis = get_redis()
    return Progress(get_store(), investigation_id, redis if redis_alive(redis) else None)


# reading --------------------------------------------------------------------


def enrich(row: Investigation, settings: Settings | None = None) -> tuple[Alert, list[Degradation]]:
    """The row's alert with what its incident tools say, stored back on the row; and the tools that failed."""
    settings = settings or get_settings()
    alert = Alert.model_validate(row.alert)
    degraded: list[Degradation] = []
    read: list[IncidentFacts] = []
    try:
        tools = readers(settings)
    except TrackerError as exc:
        return alert, [Degradation("incident tools", str(exc))]
    already = (row.alert.get("details") or {}).get(INCIDENT_TOOLS) or {}
    for tool in tools:
        key = tool.incident_key(row.alert)
        if key is None:
            continue
        if tool.name in already and not already[tool.name].get("missing"):
            # Read in full when the investigation was asked for (`/investigate <incident link>`).
            continue
        try:
            facts = tool.read(key, deadline_s=settings.incident_read_deadline_s)
        except TrackerError as exc:
            log.warning("incident_read_failed", tool=tool.name, key=key, error=redact_text(str(exc)))
            degraded.append(Degradation(tool.name, f"incident {key} not read: {redact_text(str(exc))}"))
            continue
        degraded.extend(Degradation(tool.name, f"incident {key}: {redact_text(part)}") for part in facts.missing)
        read.append(facts)
    if not read:
        return alert, degraded
    alert = with_facts(alert, read)
    get_store().update(row.id, alert=alert.model_dump(mode="json"))
    progress = _progress(row.id)
    for facts in read:
        progress(
            "gathering",
            f"Read {facts.tool} incident {facts.key}: {len(facts.details)} details, {len(facts.timeline)} timeline entries"
            + (f", assigned to {', '.join(facts.assignees)}" if facts.assignees else ""),
            tool=facts.tool,
            key=facts.key,
        )
    return alert, degraded


class IncidentNotRead(Exception):
    """A tool recognised the incident but could not read it; the message says why."""


def incident_named(word: str, settings: Settings | None = None) -> IncidentFacts | None:
    """The incident a word of `/investigate` names (a PagerDuty link or #number, a ServiceNow INC number), read in full.

    None when no configured tool recognises the word; raises IncidentNotRead when one does but cannot read it.
    """
    settings = settings or get_settings()
    try:
        for tool in readers(settings):
            key = tool.ref_in(word)
            if key is not None:
                return tool.read(key, deadline_s=settings.incident_read_deadline_s)
    except TrackerError as exc:
        raise IncidentNotRead(redact_text(str(exc))) from None
    return None


def names_incident(word: str, settings: Settings | None = None) -> bool:
    """Whether a configured tool recognises `word` as one of its incidents (no call is made)."""
    try:
        return any(tool.ref_in(word) is not None for tool in readers(settings or get_settings()))
    except TrackerError:
        return False


def with_facts(alert: Alert, found: list[IncidentFacts]) -> Alert:
    """The alert plus the tools' facts: their details as alert details (what the alert said first wins)."""
    details: dict[str, Any] = dict(alert.details)
    tools: dict[str, Any] = dict(details.get(INCIDENT_TOOLS) or {})
    timeline: list[dict[str, str]] = list(details.get(INCIDENT_TIMELINE) or [])
    urgency = alert.urgency
    for facts in found:
        tools[facts.tool] = {
            "key": facts.key,
            "url": facts.url,
            "title": facts.title,
            "service": facts.service,
            "service_id": facts.service_id,
            "urgency": facts.urgency,
            "priority": facts.priority,
            "assignees": list(facts.assignees),
            "opened_at": facts.opened_at.astimezone(UTC).isoformat() if facts.opened_at else None,
            "missing": list(facts.missing),
        }
        for name, value in facts.details.items():
            details.setdefault(name, redact_text(value))
        timeline += [{"at": t.at.astimezone(UTC).isoformat(), "event": redact_text(t.event), "source": facts.tool} for t in facts.timeline]
        if facts.urgency in ("high", "low"):
            urgency = facts.urgency
    details[INCIDENT_TOOLS] = tools
    if timeline:
        details[INCIDENT_TIMELINE] = sorted({(t["at"], t["event"]): t for t in timeline}.values(), key=lambda t: t["at"])
    return alert.model_copy(update={"details": details, "urgency": urgency})


# writing back -----------------------------------------------------------------


def note_for(row: Investigation, settings: Settings) -> Note:
    report = row.report or {}
    root = report.get("root_cause") or {}
    category = str(root.get("category") or "unknown").replace("_", " ")
    confidence = float(root.get("confidence") or 0.0)
    summary = redact_text(str(root.get("summary") or row.error or "The investigation finished without a summary."))
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1] + "…"
    return Note(
        summary=f"Incident Responder: {category} ({confidence:.0%} confidence)\n{summary}",
        report_url=f"{settings.public_url.rstrip('/')}/investigations/{row.id}",
        marker=marker(row.id),
    )


def write_back(investigation_id: str) -> list[str]:
    """Claim and queue one note per tool whose incident the investigation is about; the tools queued."""
    store = get_store()
    row = store.require(investigation_id)
    if row.report is None:
        return []
    try:
        writers = note_writers(get_settings())
    except TrackerError as exc:
        log.warning("note_writers_not_built", error=redact_text(str(exc)))
        return []
    queued = []
    for tool in writers:
        key = tool.incident_key(row.alert)
        if key is None:
            continue
        claim, _ = store.claim_ticket_action(investigation_id, tool.name, NOTE, target=key)
        if claim.status in ("done", "failed"):
            continue
        try:
            enqueue(
                get_redis(),
                ADD_NOTE,
                investigation_id,
                tool.name,
                job_id=f"ticket-note-{investigation_id}-{tool.name}",
                retries=RETRIES,
                on_failure=ON_NOTE_FAILURE,
                timeout=120,
                description=f"{tool.name} note for {investigation_id}",
            )
            queued.append(tool.name)
        except AlreadyQueued:
            continue
        except QueueUnavailable:
            log.warning("note_not_queued_queue_down", tool=tool.name)
    return queued


def _last_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def add_note(investigation_id: str, tool_name: str) -> str:
    """The queued note: added once, whatever the retries; RetryableError-like failures go back to the queue."""
    store = get_store()
    claim = store.get_ticket_action(investigation_id, tool_name, NOTE)
    if claim is None or claim.status == "done" or not claim.target:
        return "already added" if claim else "not claimed"
    row = store.require(investigation_id)
    bind_investigation(investigation_id)
    try:
        store.set_ticket_action(investigation_id, tool_name, NOTE, attempts=claim.attempts + 1)
        try:
            tool = configured_tool(get_settings(), tool_name)
            if tool is None or Capability.note not in tool.capabilities:
                raise TrackerError(f"{tool_name} is no longer configured", permanent=True)
            added = cast(NoteWriter, tool).add_note(claim.target, note_for(row, get_settings()))
        except TrackerError as exc:
            error = redact_text(str(exc))
            if not (exc.permanent or _last_attempt()):
                store.set_ticket_action(investigation_id, tool_name, NOTE, error=error)
                raise
            store.set_ticket_action(investigation_id, tool_name, NOTE, status="failed", error=error)
            log.warning("incident_note_failed", tool=tool_name, error=error)
            return "failed"
        store.set_ticket_action(investigation_id, tool_name, NOTE, status="done", error=None, key=claim.target)
        if added:
            _progress(investigation_id)(
                STAGE, f"Report added as a note to {tool.label} incident {claim.target}", tool=tool_name, action=NOTE, key=claim.target
            )
        return "added" if added else "found"
    finally:
        unbind_investigation()


def on_note_failure(
    job: Any, _connection: Any, _exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
) -> None:
    """RQ failure callback: after the last retry (or a killed worker with none left) the claim says failed, with why."""
    if job.should_retry:
        return
    investigation_id, tool_name = job.args
    reason = redact_text(str(exc)) if exc is not None else "the note job stopped"
    try:
        claim = get_store().get_ticket_action(investigation_id, tool_name, NOTE)
        if claim is not None and claim.status != "done":
            get_store().set_ticket_action(investigation_id, tool_name, NOTE, status="failed", error=reason)
    except Exception:  # a callback must not raise into RQ; log.exception keeps the why
        log.exception("note_failure_not_recorded", investigation_id=investigation_id)


# filing on request ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketButton:
    """A "Create <tool> incident" button, or the link to the incident it filed."""

    tool: str
    label: str
    # Someone asked for it already (it may still be on its way: key is None until it is filed).
    requested: bool = False
    key: str | None = None
    url: str | None = None


def ticket_buttons(investigation_id: str, settings: Settings | None = None) -> list[TicketButton]:
    """The buttons for the tools that file incidents on request (Jira has its own)."""
    try:
        tools = button_trackers(settings or get_settings())
    except TrackerError as exc:
        log.warning("ticket_tools_not_built", error=redact_text(str(exc)))
        return []
    store = get_store()
    buttons = []
    for tool in tools:
        done = store.get_ticket_action(investigation_id, tool.name, CREATE)
        buttons.append(
            TicketButton(
                tool=tool.name, label=tool.label, requested=done is not None, key=done.key if done else None, url=done.url if done else None
            )
        )
    return buttons


def tool_label(tool: str) -> str:
    return label_of(tool)


def request_ticket(investigation_id: str, tool: str, *, requested_by: str | None) -> tuple[TicketAction, bool]:
    """Claim the investigation's one incident in `tool` and queue its creation; (existing row, False) when claimed already."""
    store = get_store()
    store.require(investigation_id)
    claim, claimed = store.claim_ticket_action(investigation_id, tool, CREATE, requested_by=requested_by)
    if claimed:
        try:
            # No job id: a claim released after a failure must be able to queue a fresh job at once.
            enqueue(get_redis(), CREATE_INCIDENT, investigation_id, tool, retries=2)
        except Exception:
            store.release_ticket_action(investigation_id, tool, CREATE)
            raise
    return claim, claimed


def create_incident(investigation_id: str, tool_name: str) -> str | None:
    """File the investigation's incident in `tool_name` (once) and tell the thread; the key, None on a permanent failure."""
    store = get_store()
    settings = get_settings()
    investigation = store.require(investigation_id)
    bind_investigation(investigation_id)
    try:
        claim = store.get_ticket_action(investigation_id, tool_name, CREATE)
        if claim is None:
            claim, _ = store.claim_ticket_action(investigation_id, tool_name, CREATE)
        if claim.key:
            return claim.key
        progress = _progress(investigation_id)
        try:
            found = tracker(settings, tool_name)
            if found is None:
                raise TrackerError(f"{tool_name} is not configured", permanent=True)
            ticket = ticket_for(investigation, settings, thread_url=None)
            report_url = f"{settings.public_url.rstrip('/')}/investigations/{investigation_id}"
            ticket = replace(
                ticket,
                # Jira's wiki markup reads as noise elsewhere: other tools get the Markdown report.
                description=redact_text(render(investigation.report, "markdown", report_url=report_url))
                if investigation.report and investigation.report.get("root_cause")
                else ticket.description,
                priority=URGENCY_BY_TOOL.get(tool_name, {}).get(ticket.priority or "", ticket.priority),
                marker=marker(investigation_id),
            )
            ref = found.find(ticket.marker, project=ticket.project) or found.create(ticket)
        except TrackerError as exc:
            if not (exc.permanent or _last_attempt()):
                log.warning("incident_create_failed_will_retry", tool=tool_name, error=redact_text(str(exc)))
                raise
            log.error("incident_create_failed", tool=tool_name, error=redact_text(str(exc)))
            store.release_ticket_action(investigation_id, tool_name, CREATE)
            error = redact_text(str(exc))
            progress(
                STAGE,
                f"Could not create the {tool_name} incident: {error}. Press the button to try again.",
                tool=tool_name,
                action=CREATE,
                error=error,
            )
            return None
        store.set_ticket_action(investigation_id, tool_name, CREATE, key=ref.key, url=ref.url, status="done", error=None)
        progress(
            STAGE, f"{found.label} incident {ref.key} created", key=ref.key, url=ref.url, tool=tool_name, label=found.label, action=CREATE
        )
        return ref.key
    finally:
        unbind_investigation()
