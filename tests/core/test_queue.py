"""The queue on the real Redis: one job per investigation id, retries, and the failure callback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bot_harness import DrainWorker
from redis import Redis

from core.models import Investigation, Source, Status
from core.queue import AlreadyQueued, QueueUnavailable, enqueue, get_queue
from core.runtime import get_store

CALLS: list[str] = []


def record(value: str) -> str:
    CALLS.append(value)
    return value


def explode(_: str) -> None:
    raise RuntimeError("source exploded")


def test_second_enqueue_of_the_same_id_is_refused(app_env: dict[str, str], redis_conn: Redis) -> None:
    enqueue(redis_conn, f"{__name__}.record", "a", job_id="inv_dup_" + app_env["QUEUE_NAME"])
    with pytest.raises(AlreadyQueued):
        enqueue(redis_conn, f"{__name__}.record", "a", job_id="inv_dup_" + app_env["QUEUE_NAME"])
    assert len(get_queue(redis_conn)) == 1
    get_queue(redis_conn).empty()


def test_dead_redis_is_queue_unavailable(app_env: dict[str, str]) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with pytest.raises(QueueUnavailable, match="not answering"):
        enqueue(dead, f"{__name__}.record", "x", job_id="inv_dead_" + app_env["QUEUE_NAME"])
    assert get_queue(Redis.from_url(app_env["REDIS_URL"])).fetch_job("inv_dead_" + app_env["QUEUE_NAME"]) is None


def _row() -> Investigation:
    now = datetime.now(UTC)
    return get_store().create_investigation(
        Investigation(source=Source.api.value, service="checkout", window_start=now - timedelta(hours=1), window_end=now, at=now)
    )


def test_failure_callback_marks_failed_only_after_the_last_retry(app_env: dict[str, str], redis_conn: Redis) -> None:
    row = _row()
    enqueue(redis_conn, f"{__name__}.explode", row.id, job_id=row.id, retries=1, on_failure="agents.jobs.on_investigation_failure")
    worker = DrainWorker([get_queue(redis_conn)], connection=redis_conn)
    worker.work(burst=True)
    # First attempt failed, one retry is left (scheduled 10 s later): the investigation is not failed yet.
    assert get_store().require(row.id).status == Status.queued.value
    job = get_queue(redis_conn).fetch_job(row.id)
    assert job is not None and job.retries_left == 0
    # Skip the back-off: take the job out of the schedule and queue it now.
    queue = get_queue(redis_conn)
    queue.scheduled_job_registry.remove(job)
    queue.enqueue_job(job)
    worker.work(burst=True)
    final = get_store().require(row.id)
    assert final.status == Status.failed.value
    assert final.error is not None and "source exploded" in final.error
    events = get_store().progress(row.id)
    assert events[-1].stage == "failed" and "source exploded" in events[-1].message
