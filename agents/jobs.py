"""Queue jobs (run by `python app.py worker`, or inline when Redis is away).

Each job reads its input from the store by id, so a retried or re-delivered job
sees the current state rather than a stale copy in the queue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import structlog

from agents import artifacts, history, notify, ops_alerts, ticketing
from agents.flows import settle_followers
from agents.pipeline import investigate as run_pipeline
from core.catalog import CatalogError
from core.degraded import Degradation
from core.logging import bind_investigation, unbind_investigation
from core.models import Investigation, Status
from core.progress import Progress
from core.queue import redis_alive
from core.runtime import get_redis, get_store
from integrations.catalog import get_catalog
from integrations.registry import ServiceSources, build_sources

log = structlog.get_logger(__name__)

STALE_AFTER = timedelta(minutes=15)


def _progress(investigation_id: str) -> Progress:
    redis = get_redis()
    return Progress(get_store(), investigation_id, redis if redis_alive(redis) else None)


def _sources_for(row: Investigation) -> ServiceSources:
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        return ServiceSources(errors=[Degradation("catalog", str(exc))])
    spec = catalog.get(row.service)
    if spec is None:
        return ServiceSources(errors=[Degradation("catalog", f"service '{row.service}' is not in the service catalog")])
    return build_sources(catalog, spec)


def investigate(investigation_id: str) -> dict[str, Any]:
    """Run one investigation from its stored row to a stored report."""
    store = get_store()
    row = store.require(investigation_id)
    bind_investigation(investigation_id)
    try:
        if Status(row.status).finished and row.report is not None:
            log.info("investigation_already_finished", status=row.status)
            # A run killed between storing the report and queueing the notes left them unqueued; queueing is idempotent.
            ticketing.write_back(investigation_id)
            return row.report
        store.update(investigation_id, attempts=row.attempts + 1)
        store.set_status(investigation_id, Status.gathering)
        progress = _progress(investigation_id)
        alert, tool_errors = ticketing.enrich(row)
        sources = _sources_for(row)
        sources.errors.extend(tool_errors)
        report = run_pipeline(
            alert=alert,
            service=row.service,
            window_start=row.window_start,
            window_end=row.window_end,
            sources=sources,
            investigation_id=investigation_id,
            progress=_StageTracker(investigation_id, progress),
        )
        document = report.to_json_dict()
        final = Status.degraded if report.degraded else Status.done
        store.set_status(investigation_id, Status.reporting)
        store.save_report(investigation_id, document, final)
        root = report.root_cause
        progress(
            "done" if final is Status.done else "degraded",
            f"Report ready: {root.category.replace('_', ' ')} ({root.confidence:.0%} confidence)",
            milestone=True,
            status=final.value,
        )
        settle_followers(investigation_id)
        index_investigation(investigation_id)
        artifacts.keep_report(store.require(investigation_id))
        notify.fan_out(investigation_id)
        ops_alerts.record_source_runs(row.service, ops_alerts.source_labels(sources), report.degraded, investigation_id)
        ticketing.write_back(investigation_id)
        return document
    finally:
        unbind_investigation()


class _StageTracker:
    """Moves the stored status along as the pipeline reports new stages."""

    def __init__(self, investigation_id: str, progress: Progress) -> None:
        self.investigation_id = investigation_id
        self.progress = progress
        self.stage = Status.gathering.value

    def __call__(self, stage: str, message: str, **kwargs: Any) -> None:
        if stage in (Status.analysing.value, Status.reporting.value) and stage != self.stage:
            get_store().set_status(self.investigation_id, Status(stage))
            self.stage = stage
        self.progress(stage, message, **kwargs)


def mark_failed(investigation_id: str, reason: str) -> None:
    """End an investigation as failed and tell whoever is watching (the thread, the dashboard)."""
    store = get_store()
    row = store.get(investigation_id)
    if row is None or Status(row.status).finished:
        return
    store.set_status(investigation_id, Status.failed, error=reason)
    _progress(investigation_id)("failed", f"Investigation failed: {reason}", milestone=True, status=Status.failed.value)
    settle_followers(investigation_id)
    ops_alerts.investigation_failed(investigation_id, row.service, reason)


def on_investigation_failure(
    job: Any, _connection: Any, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
) -> None:
    """RQ failure callback: only the last attempt marks the investigation failed."""
    if job.should_retry:
        log.warning("investigation_attempt_failed_will_retry", investigation_id=job.id, error=str(exc))
        return
    if exc_type is not None and exc_type.__name__ == "AbandonedJobError":
        # RQ found the job in its started registry with no live worker: the process running it died.
        mark_failed(job.id, WORKER_DIED)
        return
    name = exc_type.__name__ if exc_type else "error"
    mark_failed(job.id, f"{name}: {exc}" if exc else name)


WORKER_DIED = "the worker running it stopped and no retry is left; press Re-run to try again"
# RQ states after which no attempt of the job will ever run again.
_JOB_OVER = frozenset({"failed", "stopped", "canceled", "finished"})


def reap_stale(now: datetime | None = None) -> list[str]:
    """Fail investigations that no job will finish: a worker killed mid-run with no retry left, or a job lost with Redis.

    A job RQ has given up on (its work horse was killed, so no failure callback ran) ends the investigation at
    the next sweep; a row with no job at all waits STALE_AFTER first, since its work horse may still be running.
    Rows still `queued` without a job were recorded while Redis was down: `requeue_waiting` queues those.
    """
    from rq.job import Job

    now = now or datetime.now(UTC)
    store = get_store()
    redis = get_redis()
    stale = {row.id for row in store.unfinished(older_than=now - STALE_AFTER)}
    reaped = []
    for row in store.unfinished(older_than=now):
        status = None
        try:
            if Job.exists(row.id, connection=redis):
                status = Job.fetch(row.id, connection=redis).get_status(refresh=True)
        except Exception:  # noqa: BLE001  (a Redis hiccup leaves the row for the next sweep)
            log.warning("reap_job_lookup_failed", investigation_id=row.id)
            continue
        if status is None and (row.status == Status.queued.value or row.id not in stale):
            continue
        if status is not None and status not in _JOB_OVER:
            continue
        mark_failed(row.id, WORKER_DIED)
        reaped.append(row.id)
    return reaped


def answer_follow_up(follow_up_id: int) -> str | None:
    """Answer a recorded question from its investigation's report (and the LLM when configured)."""
    from agents.followup import answer_question

    store = get_store()
    row = store.get_follow_up(follow_up_id)
    if row is None or row.status == "answered":
        return row.answer if row else None
    investigation = store.require(row.investigation_id)
    bind_investigation(investigation.id)
    try:
        history = [f for f in store.follow_ups(investigation.id) if f.id != row.id and f.answer]
        answer, by = answer_question(investigation, row.question, history=history)
        store.answer_follow_up(follow_up_id, answer=answer, answered_by=by)
        _progress(investigation.id)("answer", answer, follow_up_id=follow_up_id)
        index_investigation(investigation.id)
        return answer
    finally:
        unbind_investigation()


def index_investigation(investigation_id: str) -> bool:
    """(Re-)index one investigation in the incident history with its questions and resolution; False when it could not be."""
    store = get_store()
    row = store.get(investigation_id)
    if row is None:
        return False
    return history.index_investigation(row, store.follow_ups(investigation_id))
