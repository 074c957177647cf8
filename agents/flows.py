"""What every surface (Slack, REST API, CLI) does to start and steer investigations.

Surfaces validate their own input and call these; they never touch the queue
or the tables directly, so every path has the same idempotency.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError

from core.alert import Alert
from core.catalog import Catalog, parse_duration
from core.models import FollowUp, Investigation, JiraLink, Source, Status
from core.progress import Progress
from core.queue import ANSWER_FOLLOW_UP, INVESTIGATE, AlreadyQueued, QueueUnavailable, claim_key, enqueue, resolve
from core.runtime import get_redis, get_store
from core.settings import Profile, get_settings
from core.store import IdempotencyClaim

log = structlog.get_logger(__name__)

CREATE_JIRA = "agents.jira_ticket.create_ticket"
ON_INVESTIGATION_FAILURE = "agents.jobs.on_investigation_failure"
# Alerts of one service arriving this close together are one incident: the first is investigated, the rest join it.
COALESCE_WINDOW = timedelta(minutes=10)
# Only alerting sources storm; a person asking (Slack command, API) gets the investigation they asked for.
COALESCED_SOURCES = frozenset({Source.pagerduty_post, Source.pagerduty_webhook, Source.alert_post})
COALESCED_INTO = "coalesced_into"
# A start posts one Slack message and writes two rows; Slack's client retries are what can make it slow.
START_TIMEOUT_S = 120


class RecordedNotQueued(QueueUnavailable):
    """Redis is down: the investigation is recorded as `queued` and `requeue_waiting` queues it once Redis is back."""

    def __init__(self, investigation: Investigation, cause: QueueUnavailable) -> None:
        super().__init__(str(cause))
        self.investigation = investigation


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    at: datetime


def window_for(catalog: Catalog, *, at: datetime | None = None, since_s: int | None = None, now: datetime | None = None) -> Window:
    """The time window to read: `since` (or the catalog's lookback) before `at`, and the catalog's `after` past it."""
    now = now or datetime.now(UTC)
    at = at or now
    lookback = since_s if since_s is not None else parse_duration(catalog.defaults.lookback)
    after = parse_duration(catalog.defaults.after)
    return Window(start=at - timedelta(seconds=lookback), end=min(at + timedelta(seconds=after), max(now, at)), at=at)


def open_investigation(
    *,
    alert: Alert,
    service: str,
    source: Source,
    window: Window,
    slack_channel: str | None = None,
    slack_thread_ts: str | None = None,
    requested_by: str | None = None,
    parent_id: str | None = None,
    idempotency: IdempotencyClaim | None = None,
) -> tuple[Investigation, bool]:
    """Record an investigation and queue it. Returns (investigation, created); a known PagerDuty incident or a repeated
    idempotency key is not created twice (core.store.IdempotencyKeyReused when the key came with another request).

    Raises RecordedNotQueued when Redis is down (outside the dev profile): the row stays `queued` and
    `requeue_waiting` picks it up once the queue is back.
    """
    store = get_store()
    row = Investigation(
        source=source.value,
        service=service,
        title=alert.title[:500],
        alert=alert.model_dump(mode="json"),
        window_start=window.start,
        window_end=window.end,
        at=window.at,
        slack_channel=slack_channel,
        slack_thread_ts=slack_thread_ts,
        pagerduty_incident_id=alert.incident_id if source in (Source.pagerduty_post, Source.pagerduty_webhook) else None,
        requested_by=requested_by,
        parent_id=parent_id,
    )
    stored = store.create_investigation(row, idempotency=idempotency)
    if stored.id != row.id:
        return stored, False
    if parent_id is None and source in COALESCED_SOURCES:
        lead = _storm_lead(service, stored.id)
        if lead is not None:
            return _join(stored, lead), True
    try:
        queue_investigation(stored.id)
    except QueueUnavailable as exc:
        raise RecordedNotQueued(stored, exc) from exc
    return stored, True


def _storm_lead(service: str, candidate_id: str) -> Investigation | None:
    """The investigation this service's alerts currently join, or None when `candidate_id` becomes it.

    The claim is one Redis SET NX per service, so concurrent alerts in several web processes agree on one lead.
    Without Redis every alert stands alone (and the enqueue that follows reports the outage).
    """
    key = f"ir:storm-lead:{get_settings().queue_name}:{service}"
    redis = get_redis()
    try:
        if redis.set(key, candidate_id, nx=True, ex=int(COALESCE_WINDOW.total_seconds())):
            return None
        lead_id = redis.get(key)
    except (RedisError, OSError):
        return None
    lead = get_store().get(lead_id.decode()) if isinstance(lead_id, bytes) else None
    if lead is None:
        # The lead's row is gone (another database behind the same Redis): this alert leads from now on.
        redis.set(key, candidate_id, ex=int(COALESCE_WINDOW.total_seconds()))
        return None
    return lead


def _join(row: Investigation, lead: Investigation) -> Investigation:
    """Link an alert to its storm's lead; it finishes with the lead's status and report (see settle_followers)."""
    store = get_store()
    alert = dict(row.alert)
    alert["details"] = {**(alert.get("details") or {}), COALESCED_INTO: lead.id}
    joined = store.update(row.id, parent_id=lead.id, alert=alert)
    Progress(store, row.id)("queued", f"Linked to investigation {lead.id}: an alert for {row.service} in the same window", milestone=True)
    log.info("alert_coalesced", investigation_id=row.id, lead_id=lead.id, service=row.service)
    settle_followers(lead.id)
    return store.require(joined.id)


def is_follower(row: Investigation) -> bool:
    """Whether this row is an alert coalesced into another investigation (it has no job of its own)."""
    details = (row.alert or {}).get("details") or {}
    return bool(row.parent_id) and details.get(COALESCED_INTO) == row.parent_id


def settle_followers(lead_id: str) -> list[str]:
    """Give the alerts coalesced into a finished investigation its status and report; no-op while it runs."""
    store = get_store()
    lead = store.get(lead_id)
    if lead is None or not Status(lead.status).finished:
        return []
    settled = []
    for row in store.children(lead_id):
        if Status(row.status).finished or not is_follower(row):
            continue
        if lead.report is not None:
            store.save_report(row.id, lead.report, Status(lead.status))
        else:
            store.set_status(row.id, Status(lead.status), error=f"linked investigation {lead.id} failed: {lead.error}")
        settled.append(row.id)
    return settled


def queue_investigation(investigation_id: str) -> None:
    """Queue the job; in the embedded (dev) profile with no Redis, run it on a thread of this process instead."""
    try:
        enqueue(get_redis(), INVESTIGATE, investigation_id, job_id=investigation_id, on_failure=ON_INVESTIGATION_FAILURE)
    except AlreadyQueued:
        log.info("investigation_already_queued", investigation_id=investigation_id)
    except QueueUnavailable:
        if get_settings().app_env is not Profile.dev:
            raise
        Progress(get_store(), investigation_id)(
            "queued", "The job queue (Redis) is not answering; running this investigation inside this process"
        )
        threading.Thread(target=resolve(INVESTIGATE), args=(investigation_id,), name=f"inline-{investigation_id}", daemon=True).start()


def queue_start(func: str, *args: Any, key: str | None, description: str, on_failure: str | None = None) -> bool:
    """Queue the slow half of a person's request (posting the thread, recording the run) for a worker, ahead of runs.

    The web process acks Slack within its 3 s and should spend no more than a parse and a Redis write on it: this is
    that write. `key` (Slack's trigger id) makes a repeated delivery a no-op: False when it was queued before.
    A start is not retried (its root message may be posted already); `on_failure` tells the person instead.
    Raises QueueUnavailable when Redis is down; the caller then does the work itself, which records the run.
    """
    job_id = f"start-{hashlib.sha256(key.encode()).hexdigest()[:32]}" if key else None
    try:
        enqueue(
            get_redis(),
            func,
            *args,
            job_id=job_id,
            retries=0,
            timeout=START_TIMEOUT_S,
            on_failure=on_failure,
            description=description,
            at_front=True,
        )
    except AlreadyQueued:
        log.info("start_already_queued", job_id=job_id)
        return False
    return True


def rerun(investigation_id: str, *, requested_by: str | None, idempotency: IdempotencyClaim | None = None) -> Investigation:
    """A fresh investigation of the same alert and window, in the same thread (the earlier one for a repeated key)."""
    store = get_store()
    old = store.require(investigation_id)
    alert = Alert.model_validate(old.alert)
    new, _ = open_investigation(
        alert=alert.model_copy(update={"incident_id": None}),
        service=old.service,
        source=Source(old.source) if old.source not in COALESCED_SOURCES else Source.api,
        window=Window(start=old.window_start, end=old.window_end, at=old.at),
        slack_channel=old.slack_channel,
        slack_thread_ts=old.slack_thread_ts,
        requested_by=requested_by,
        parent_id=old.id,
        idempotency=idempotency,
    )
    return new


def ask(investigation_id: str, *, question: str, dedupe_key: str, asked_by: str | None) -> FollowUp | None:
    """Record a follow-up question and queue its answer; None for a duplicate delivery of the same question."""
    store = get_store()
    follow_up = store.add_follow_up(investigation_id, dedupe_key=dedupe_key, question=question[:4000], asked_by=asked_by)
    if follow_up is None:
        return None
    assert follow_up.id is not None
    try:
        # The database's unique key already makes the question idempotent; the job needs no id of its own.
        enqueue(get_redis(), ANSWER_FOLLOW_UP, follow_up.id, retries=1)
    except Exception:
        # Forget the question so that Slack's retry (or the user asking again) records and queues it anew.
        store.delete_follow_up(follow_up.id)
        raise
    return follow_up


def request_jira(investigation_id: str, *, requested_by: str | None) -> tuple[JiraLink, bool]:
    """Claim the investigation's one Jira ticket and queue its creation; (existing link, False) when already claimed."""
    store = get_store()
    store.require(investigation_id)
    link, claimed = store.claim_jira(investigation_id, requested_by=requested_by)
    if claimed:
        try:
            # No job id: a claim released after a failure must be able to queue a fresh job at once.
            enqueue(get_redis(), CREATE_JIRA, investigation_id, retries=2)
        except Exception:
            # Without a job the claim would block every later click; give it back.
            store.release_jira(investigation_id)
            raise
    return link, claimed


def on_queue(row: Investigation) -> bool:
    """Whether the run is queued in Redis or past it; False while a row recorded during a Redis outage waits for the sweep."""
    from rq.job import Job

    if row.status != Status.queued.value or is_follower(row):
        return True
    try:
        return bool(Job.exists(row.id, connection=get_redis()))
    except (RedisError, OSError):
        return False


def requeue_waiting(*, older_than: timedelta = timedelta(seconds=30)) -> list[str]:
    """Queue investigations recorded while Redis was down (status queued, no job)."""
    from rq.job import Job

    store = get_store()
    redis = get_redis()
    requeued = []
    for row in store.unfinished(older_than=datetime.now(UTC) - older_than):
        if row.status == "queued" and not is_follower(row) and not Job.exists(row.id, connection=redis):
            redis.delete(claim_key(row.id))
            queue_investigation(row.id)
            requeued.append(row.id)
    return requeued
