"""The responder alerts on its own trouble, to the targets of the catalog's `defaults.ops_notify`.

Four signals: an investigation job that failed for good, a source that failed
OPS_SOURCE_FAILURES runs in a row for one service, the LLM circuit breaker opening,
and the queue backing up (OPS_QUEUE_DEPTH waiting jobs, or the oldest waiting
OPS_QUEUE_AGE_S). Each (signal, subject) is sent once per OPS_ALERT_PERIOD_S: the
first process to SET NX its key in Redis sends it, every later one only counts it,
so a storm of failures or a dozen workers sweeping is one message.

Raising an alert never holds or breaks an investigation: the notice goes on the
queue at the front, one job per target, retried with backoff. The queue backlog
is the exception: the worker's sweep sends that one itself, since a backed-up queue
would hold its own alarm. A notice that cannot be sent is logged and counted in
`ir_ops_alert_deliveries_total`, nothing more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

from agents.notify import target_key
from agents.report import Degraded
from core.catalog import CatalogError
from core.metrics import inc
from core.queue import AlreadyQueued, QueueUnavailable, enqueue, get_queue
from core.redaction import redact_text
from core.runtime import get_redis
from core.settings import get_settings
from integrations.catalog import get_catalog
from integrations.errors import SourceError
from integrations.notify.base import OpsNotice, OpsNotifier
from integrations.registry import BuiltSource, ServiceSources, build_ops_targets
from integrations.remote_calls import RetryableError
from integrations.roles import NOTIFY, ROLES

log = structlog.get_logger(__name__)

JOB_FAILED = "job_failed"
SOURCE_FAILING = "source_failing"
BREAKER_OPEN = "llm_breaker_open"
QUEUE_BACKLOG = "queue_backlog"

DELIVER = "agents.ops_alerts.deliver"
ON_FAILURE = "agents.ops_alerts.on_delivery_failure"
RETRIES = 3
# A source's run-in-a-row count is forgotten when the service has not been investigated for this long.
FAILURE_COUNT_TTL_S = 7 * 86400
# How many jobs at the head of the queue are looked at for the oldest: ops notices jump ahead of investigations.
HEAD = 10


@dataclass(frozen=True, slots=True)
class OpsAlert:
    """One signal about one subject (a service, a service's source, the breaker, the queue), as people will read it."""

    signal: str
    subject: str
    title: str
    text: str
    link: str


def _key(*parts: str) -> str:
    # The queue name separates deployments (and test runs) that share one Redis.
    return ":".join(("ir:ops", get_settings().queue_name, *parts))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ops_targets() -> dict[str, BuiltSource]:
    """The catalog's ops targets by key; one that cannot be built is logged and left out."""
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        log.warning("ops_targets_unreadable", reason=redact_text(str(exc).splitlines()[0]))
        return {}
    built = build_ops_targets(catalog)
    for error in built.errors:
        log.warning("ops_target_not_built", target=error.component, reason=redact_text(error.reason))
    return {target_key(entry): entry for entry in built.entries(NOTIFY) if isinstance(entry.source, OpsNotifier)}


def raise_alert(alert: OpsAlert, *, send_now: bool = False) -> str:
    """Send `alert` unless it was sent within the period: queued per target, or sent here when `send_now`.

    Returns what happened: raised, deduplicated, or unchecked (Redis did not answer, so nothing was sent).
    """
    settings = get_settings()
    at = datetime.now(UTC)
    # Job ids are global to the Redis: the queue name keeps two deployments' alerts of one second apart.
    notice_id = f"ops-{_digest(settings.queue_name + alert.signal + alert.subject)}-{int(at.timestamp())}"
    try:
        redis = get_redis()
        first = redis.set(_key("alert", alert.signal, _digest(alert.subject)), notice_id, nx=True, ex=settings.ops_alert_period_s)
    except (RedisError, OSError) as exc:
        # Without the shared key every process would send its own copy: the log keeps it instead.
        log.warning("ops_alert_unchecked", signal=alert.signal, subject=alert.subject, title=alert.title, error=str(exc))
        inc("ops_alerts_total", signal=alert.signal, outcome="unchecked")
        return "unchecked"
    if not first:
        inc("ops_alerts_total", signal=alert.signal, outcome="deduplicated")
        return "deduplicated"
    inc("ops_alerts_total", signal=alert.signal, outcome="raised")
    log.warning("ops_alert", signal=alert.signal, subject=alert.subject, title=alert.title, text=alert.text)
    try:
        targets = ops_targets()
    except Exception:  # building a target must not fail the job that noticed the trouble; the log has why
        log.exception("ops_targets_failed", signal=alert.signal)
        targets = {}
    for key, entry in targets.items():
        notice = OpsNotice(**asdict(alert), at=at, delivery_id=f"{notice_id}-{key[:12]}")
        if send_now:
            _send(entry, notice)
        else:
            _queue(redis, notice, key, entry)
    return "raised"


def _queue(redis: Redis, notice: OpsNotice, key: str, entry: BuiltSource) -> None:
    payload = {**asdict(notice), "at": notice.at.isoformat()}
    try:
        enqueue(
            redis,
            DELIVER,
            payload,
            key,
            job_id=notice.delivery_id,
            retries=RETRIES,
            on_failure=ON_FAILURE,
            timeout=120,
            description=f"ops alert {notice.signal} to {entry.label}",
            at_front=True,
        )
    except AlreadyQueued:
        return
    except QueueUnavailable as exc:
        log.warning("ops_alert_not_queued", target=entry.label, signal=notice.signal, error=str(exc))
        inc("ops_alert_deliveries_total", signal=notice.signal, outcome="failed")


def _send(entry: BuiltSource, notice: OpsNotice) -> bool:
    """One try, here and now; a failure is logged and counted."""
    try:
        entry.source.send_ops(notice)
    except SourceError as exc:
        log.warning("ops_alert_not_sent", target=entry.label, signal=notice.signal, reason=redact_text(str(exc)))
        inc("ops_alert_deliveries_total", signal=notice.signal, outcome="failed")
        return False
    except Exception:  # a broken target must not stop the sweep that sends it; the log has the traceback
        log.exception("ops_alert_not_sent", target=entry.label, signal=notice.signal)
        inc("ops_alert_deliveries_total", signal=notice.signal, outcome="failed")
        return False
    inc("ops_alert_deliveries_total", signal=notice.signal, outcome="sent")
    return True


def deliver(payload: dict[str, str], key: str) -> str:
    """The queued delivery to one target; RetryableError goes back to the queue for another try."""
    notice = OpsNotice(
        signal=payload["signal"],
        subject=payload["subject"],
        title=payload["title"],
        text=payload["text"],
        link=payload["link"],
        at=datetime.fromisoformat(payload["at"]),
        delivery_id=payload["delivery_id"],
    )
    entry = ops_targets().get(key)
    if entry is None:
        log.warning("ops_alert_target_gone", signal=notice.signal)
        inc("ops_alert_deliveries_total", signal=notice.signal, outcome="failed")
        return "target gone"
    try:
        entry.source.send_ops(notice)
    except RetryableError:
        raise
    except SourceError as exc:
        log.warning("ops_alert_not_sent", target=entry.label, signal=notice.signal, reason=redact_text(str(exc)))
        inc("ops_alert_deliveries_total", signal=notice.signal, outcome="failed")
        return "failed"
    inc("ops_alert_deliveries_total", signal=notice.signal, outcome="sent")
    return "sent"


def on_delivery_failure(
    job: Any, _connection: Any, _exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
) -> None:
    """RQ failure callback: the last try of an ops delivery failed; logged and counted, nothing more."""
    if job.should_retry:
        return
    payload = job.args[0]
    log.warning("ops_alert_not_sent", signal=payload.get("signal"), reason=redact_text(str(exc)) if exc else "the job stopped")
    inc("ops_alert_deliveries_total", signal=str(payload.get("signal")), outcome="failed")


def _link(path: str = "") -> str:
    return f"{get_settings().public_url.rstrip('/')}{path}"


def _period() -> str:
    seconds = get_settings().ops_alert_period_s
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def investigation_failed(investigation_id: str, service: str, reason: str) -> str:
    """An investigation job failed for good (no retry left, or its worker died)."""
    return raise_alert(
        OpsAlert(
            signal=JOB_FAILED,
            subject=service,
            title=f"An investigation of {service} failed",
            text=f"{investigation_id} failed for good: {redact_text(reason)}. "
            f"Further failures of {service} within {_period()} are counted in /metrics, not sent.",
            link=_link(f"/investigations/{investigation_id}"),
        )
    )


def source_labels(sources: ServiceSources) -> list[str]:
    """The labels a run's degraded entries name its sources by: those built, and those that could not be."""
    built = [entry.label for role in ROLES if role is not NOTIFY for entry in sources.entries(role)]
    return [*built, *(error.component for error in sources.errors)]


def record_source_runs(service: str, labels: Iterable[str], degraded: Iterable[Degraded], investigation_id: str) -> list[str]:
    """Count each source's failed runs in a row for `service` (a degraded entry names it), reset by a clean run.

    At OPS_SOURCE_FAILURES in a row an alert is raised; returns the labels alerted on.
    """
    threshold = get_settings().ops_source_failures
    if threshold <= 0:
        return []
    entries = list(degraded)
    failed: dict[str, str] = {}
    clean: list[str] = []
    for label in dict.fromkeys(labels):
        reason = next((d.reason for d in entries if d.component == label or d.component.startswith(f"{label}:")), None)
        if reason is None:
            clean.append(label)
        else:
            failed[label] = reason
    try:
        pipe = get_redis().pipeline(transaction=False)
        for label in clean:
            pipe.delete(_key("source-failures", service, label))
        for label in failed:
            pipe.incr(_key("source-failures", service, label))
            pipe.expire(_key("source-failures", service, label), FAILURE_COUNT_TTL_S)
        answers = pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("ops_source_runs_not_counted", service=service, error=str(exc))
        return []
    counts = answers[len(clean) :: 2]
    alerted = []
    for (label, reason), count in zip(failed.items(), counts, strict=True):
        if int(count) < threshold:
            continue
        raise_alert(
            OpsAlert(
                signal=SOURCE_FAILING,
                subject=f"{service} {label}",
                title=f"{label} of {service} failed {count} investigations in a row",
                text=f"Latest ({investigation_id}): {redact_text(reason)}",
                link=_link(f"/investigations/{investigation_id}"),
            )
        )
        alerted.append(label)
    return alerted


def breaker_opened(name: str, threshold: int, cooldown_s: float) -> str:
    """The LLM circuit breaker opened: investigations fall back to the offline analyst until it closes."""
    return raise_alert(
        OpsAlert(
            signal=BREAKER_OPEN,
            subject=name,
            title="The LLM circuit breaker opened",
            text=f"{threshold} LLM calls in a row failed ({redact_text(name)}); investigations use the offline analyst "
            f"for the next {cooldown_s:.0f} s, then one call probes the endpoint.",
            link=_link(),
        )
    )


def check_queue(redis: Redis) -> str | None:
    """The sweep's look at the queue: an alert, sent from here, when it holds too many jobs or too old a one."""
    settings = get_settings()
    if settings.ops_queue_depth <= 0 and settings.ops_queue_age_s <= 0:
        return None
    queue = get_queue(redis)
    depth = queue.count
    oldest = _oldest_age_s(queue, redis)
    deep = 0 < settings.ops_queue_depth <= depth
    old = 0 < settings.ops_queue_age_s <= oldest
    if not (deep or old):
        return None
    return raise_alert(
        OpsAlert(
            signal=QUEUE_BACKLOG,
            subject=queue.name,
            title=f"The job queue {queue.name} is backing up",
            text=f"{depth} jobs waiting (alert at {settings.ops_queue_depth}); the oldest has waited {oldest:.0f} s "
            f"(alert at {settings.ops_queue_age_s:.0f} s). Workers may be down, stuck or too few.",
            link=_link(),
        ),
        send_now=True,
    )


def _oldest_age_s(queue: Queue, redis: Redis) -> float:
    now = datetime.now(UTC)
    ages = [0.0]
    for job in Job.fetch_many(queue.get_job_ids(0, HEAD - 1), connection=redis):
        if job is not None and job.enqueued_at is not None:
            enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
            ages.append((now - enqueued).total_seconds())
    return max(ages)
