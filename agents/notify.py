"""Telling people a report is ready: one queued delivery per (investigation, target), retried with backoff.

`fan_out` runs when a report is stored: it records a row per notify target of the
service (the catalog's `notify`, else `defaults.notify`) and queues one job each. A
job sends only while its row is not delivered, and marks it once the target took it:
a retried or re-delivered job does not send twice, and a kill between the send and
the mark leaves a copy the receiver recognises (the same `webhook-id`, the same
`Message-ID`). One target failing never touches the report or the other targets;
the dashboard shows each target's state.
"""

from __future__ import annotations

import hashlib
import json
from types import TracebackType
from typing import Any

import structlog

from agents.artifacts import report_link
from agents.history import culprit_of
from agents.render import render
from core.catalog import CatalogError
from core.models import Investigation, utcnow
from core.queue import AlreadyQueued, QueueUnavailable, enqueue
from core.redaction import redact_text
from core.runtime import get_redis, get_store
from core.settings import get_settings
from integrations.catalog import get_catalog
from integrations.errors import SourceError
from integrations.notify.base import Notice
from integrations.registry import BuiltSource, build_sources
from integrations.remote_calls import RetryableError
from integrations.roles import NOTIFY

log = structlog.get_logger(__name__)

DELIVER = "agents.notify.deliver"
ON_FAILURE = "agents.notify.on_delivery_failure"
RETRIES = 3


def target_key(entry: BuiltSource) -> str:
    """A stable id of a target: its kind and options (names of variables, never their values)."""
    options = getattr(entry.source, "options", None)
    described = options.model_dump(mode="json") if options is not None and hasattr(options, "model_dump") else {}
    raw = json.dumps([entry.label, described], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def targets(row: Investigation) -> dict[str, BuiltSource]:
    """The service's notify targets by key (none when the catalog cannot be read or lists none)."""
    try:
        catalog = get_catalog()
    except CatalogError:
        return {}
    spec = catalog.get(row.service)
    if spec is None:
        return {}
    built = build_sources(catalog, spec)
    for error in built.errors:
        if error.component.startswith("notify:"):
            log.warning("notify_target_not_built", target=error.component, reason=redact_text(error.reason))
    return {target_key(entry): entry for entry in built.entries(NOTIFY)}


def fan_out(investigation_id: str) -> list[str]:
    """Record and queue one delivery per notify target; the keys queued (a target already delivered is not)."""
    store = get_store()
    row = store.require(investigation_id)
    queued = []
    for key, entry in targets(row).items():
        label = f"{entry.label} → {getattr(entry.source, 'target', '')}"
        claimed = store.claim_notification(investigation_id, key, label=redact_text(label))
        if claimed.status == "delivered":
            continue
        try:
            enqueue(
                get_redis(),
                DELIVER,
                investigation_id,
                key,
                job_id=f"notify-{investigation_id}-{key}",
                retries=RETRIES,
                on_failure=ON_FAILURE,
                timeout=120,
                description=f"notify {entry.label} of {investigation_id}",
            )
            queued.append(key)
        except AlreadyQueued:
            continue
        except QueueUnavailable:
            # The row stays pending: the dashboard shows it, and the next fan-out (a re-delivered job) queues it.
            log.warning("notify_not_queued_queue_down", target=entry.label)
    return queued


def notice_for(row: Investigation, key: str) -> Notice:
    report = row.report or {}
    root = report.get("root_cause") or {}
    settings = get_settings()
    url = report_link(row)
    culprit = culprit_of(report)
    thread = _thread_url(row)
    return Notice(
        investigation_id=row.id,
        service=row.service,
        title=redact_text(row.title or f"Investigation of {row.service}"),
        category=str(root.get("category", "unknown")),
        confidence=float(root.get("confidence") or 0.0),
        summary=redact_text(str(root.get("summary", ""))),
        report_url=url,
        text=render(report, "markdown", override_dir=settings.templates_dir),
        html=render(report, "html", override_dir=settings.templates_dir, report_url=url, thread_url=thread),
        degraded=bool(report.get("degraded")),
        culprit=redact_text(culprit) if culprit else None,
        actions=tuple(redact_text(str(a.get("title", ""))) for a in (report.get("actions") or [])[:5]),
        thread_url=thread,
        delivery_id=f"msg_{row.id}_{key[:12]}",
    )


def _thread_url(row: Investigation) -> str | None:
    if not (row.slack_channel and row.slack_thread_ts):
        return None
    return f"https://slack.com/archives/{row.slack_channel}/p{row.slack_thread_ts.replace('.', '')}"


def deliver(investigation_id: str, key: str) -> str:
    """Send one notice, unless it was delivered already; RetryableError goes back to the queue for another try."""
    store = get_store()
    row = store.require(investigation_id)
    current = store.get_notification(investigation_id, key)
    if current is None or current.status == "delivered":
        return "already delivered" if current else "no such delivery"
    entry = targets(row).get(key)
    if entry is None:
        store.set_notification(investigation_id, key, status="failed", error="the target is no longer in the catalog")
        return "target gone"
    store.set_notification(investigation_id, key, attempts=current.attempts + 1)
    try:
        entry.source.send(notice_for(row, key))
    except RetryableError as exc:
        store.set_notification(investigation_id, key, error=redact_text(str(exc)))
        raise
    except SourceError as exc:
        store.set_notification(investigation_id, key, status="failed", error=redact_text(str(exc)))
        log.warning("notify_failed", target=entry.label, reason=redact_text(str(exc)))
        return "failed"
    store.set_notification(investigation_id, key, status="delivered", error=None, delivered_at=utcnow())
    return "delivered"


def on_delivery_failure(
    job: Any, _connection: Any, _exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
) -> None:
    """RQ failure callback: after the last retry (or a killed worker with none left) the row says failed, with why."""
    if job.should_retry:
        return
    investigation_id, key = job.args
    reason = redact_text(str(exc)) if exc is not None else "the delivery job stopped"
    try:
        get_store().set_notification(investigation_id, key, status="failed", error=reason)
    except Exception:  # a callback must not raise into RQ; log.exception keeps the why
        log.exception("notify_failure_not_recorded", investigation_id=investigation_id)
