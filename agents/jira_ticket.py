"""The queue job behind "Create Jira": exactly one ticket per investigation.

The database claim (`Store.claim_jira`) lets one job run per investigation; a
label unique to the investigation lets a retried job find the ticket a failed
attempt already filed instead of filing a second one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import structlog
from rq import get_current_job

from agents.render import render
from core.catalog import CatalogError
from core.logging import bind_investigation, unbind_investigation
from core.models import Investigation
from core.progress import Progress
from core.queue import redis_alive
from core.redaction import redact_text
from core.runtime import get_redis, get_store
from core.settings import Settings, get_settings
from integrations.catalog import get_catalog
from integrations.incidents.base import NewTicket, TrackerError
from integrations.incidents.trackers import configured_tracker

log = structlog.get_logger(__name__)

SUMMARY_MAX = 254
PRIORITY_BY_URGENCY = {"high": "High", "low": "Low"}
ThreadLink = Callable[[Investigation], str | None]
_thread_links: list[ThreadLink] = []


def register_thread_link(resolver: ThreadLink) -> None:
    """Let a chat surface say where an investigation's thread is (the bot registers Slack permalinks)."""
    if resolver not in _thread_links:
        _thread_links.append(resolver)


def _label(text: str) -> str:
    # Jira labels cannot hold spaces.
    return re.sub(r"[^\w.-]+", "-", text.strip()).strip("-")[:100] or "unknown"


def ticket_for(investigation: Investigation, settings: Settings, *, thread_url: str | None) -> NewTicket:
    report = investigation.report or {}
    root = report.get("root_cause") or {}
    # The title is what a person typed or an alert said: redact it like evidence, before cutting it to size.
    symptom = " ".join(redact_text(investigation.title or root.get("summary") or "incident").split())
    summary = f"[{investigation.service}] {symptom}"
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1] + "…"
    report_url = f"{settings.public_url.rstrip('/')}/investigations/{investigation.id}"
    if report.get("root_cause"):
        description = render(report, "jira", report_url=report_url, thread_url=thread_url)
    else:
        description = f"The investigation has no report yet (status {investigation.status}).\n\n[Full report|{report_url}]"
    labels = ["incident", _label(investigation.service)]
    if investigation.pagerduty_incident_id:
        labels.append(_label(f"pd-{investigation.pagerduty_incident_id}"))
    urgency = str((investigation.alert or {}).get("urgency") or "").lower()
    return NewTicket(
        project=_project_for(investigation, settings),
        summary=summary,
        description=redact_text(description),
        labels=labels,
        priority=PRIORITY_BY_URGENCY.get(urgency),
        marker=_label(f"ir-{investigation.id}"),
    )


def _project_for(investigation: Investigation, settings: Settings) -> str:
    try:
        spec = get_catalog().get(investigation.service)
    except CatalogError:
        spec = None
    return spec.jira_project if spec is not None and spec.jira_project else settings.jira_project


def _thread_url(investigation: Investigation) -> str | None:
    for resolver in _thread_links:
        link = resolver(investigation)
        if link:
            return link
    return None


def _last_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def create_ticket(investigation_id: str) -> str | None:
    """File the investigation's Jira ticket (once) and tell the thread; returns the key, None on a permanent failure."""
    store = get_store()
    settings = get_settings()
    investigation = store.require(investigation_id)
    bind_investigation(investigation_id)
    try:
        link = store.get_jira(investigation_id)
        if link is None:
            link, _ = store.claim_jira(investigation_id, requested_by=None)
        if link.key:
            return link.key
        redis = get_redis()
        progress = Progress(store, investigation_id, redis if redis_alive(redis) else None)
        try:
            tracker = configured_tracker(settings)
            if tracker is None:
                raise TrackerError("Jira is not configured (set JIRA_URL, JIRA_USER and JIRA_API_TOKEN)", permanent=True)
            ticket = ticket_for(investigation, settings, thread_url=_thread_url(investigation))
            ref = tracker.find(ticket.marker, project=ticket.project) or tracker.create(ticket)
        except TrackerError as exc:
            if not (exc.permanent or _last_attempt()):
                log.warning("jira_attempt_failed_will_retry", error=str(exc))
                raise
            log.error("jira_ticket_failed", error=str(exc))
            # Give the claim back so the next click can try again.
            store.release_jira(investigation_id)
            progress("jira", f"Could not create the Jira ticket: {exc}. Press Create Jira to try again.", error=str(exc))
            return None
        store.set_jira(investigation_id, key=ref.key, url=ref.url, status="created", error=None)
        progress("jira", f"Jira ticket {ref.key} created", key=ref.key, url=ref.url)
        log.info("jira_ticket_created", key=ref.key)
        return ref.key
    finally:
        unbind_investigation()
