"""The job queue (RQ on Redis), with an inline fallback for one-machine use.

Jobs are named by dotted path so that `core` never imports the code it runs.
An investigation's job id is its investigation id: a second enqueue of the
same id is refused, which makes duplicate deliveries harmless.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue, Retry

from core.settings import get_settings
from core.tracing import META_KEY, current_carrier

log = structlog.get_logger(__name__)

INVESTIGATE = "agents.jobs.investigate"
ANSWER_FOLLOW_UP = "agents.jobs.answer_follow_up"
INDEX_INVESTIGATION = "agents.jobs.index_investigation"
# Back-off between retries of a whole investigation: long enough for a restarted dependency.
RETRY_INTERVALS = [10, 60, 300]
CLAIM_TTL_S = 7 * 86400


class QueueUnavailable(RuntimeError):
    """Redis did not answer; nothing was enqueued and the caller should tell the user to retry."""


class AlreadyQueued(RuntimeError):
    """A job with this id is queued or running already."""


@dataclass(frozen=True, slots=True)
class Enqueued:
    job_id: str


def resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    func: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return func


def redis_alive(redis: Redis) -> bool:
    try:
        return bool(redis.ping())
    except (RedisError, OSError):
        return False


def claim_key(job_id: str) -> str:
    """The Redis key that keeps a job id from being queued twice; per queue, as deployments may share one Redis."""
    return f"ir:job-claimed:{get_settings().queue_name}:{job_id}"


def get_queue(redis: Redis) -> Queue:
    return Queue(get_settings().queue_name, connection=redis)


def enqueue(
    redis: Redis,
    func: str,
    *args: Any,
    job_id: str | None = None,
    timeout: int | None = None,
    retries: int | None = None,
    on_failure: str | None = None,
    description: str | None = None,
    at_front: bool = False,
) -> Enqueued:
    """Put a job on the queue; raise AlreadyQueued for a live duplicate id, QueueUnavailable when Redis is down."""
    settings = get_settings()
    queue = get_queue(redis)
    retry_count = settings.job_retries if retries is None else retries
    lock = claim_key(job_id) if job_id is not None else None
    try:
        # SET NX is atomic: of two enqueues of one id, concurrent or a week apart, only the first wins.
        if lock is not None and not redis.set(lock, "1", nx=True, ex=CLAIM_TTL_S):
            raise AlreadyQueued(job_id)
        try:
            job = queue.enqueue(
                func,
                *args,
                job_id=job_id,
                job_timeout=timeout or settings.job_timeout_s,
                retry=Retry(max=retry_count, interval=RETRY_INTERVALS[:retry_count]) if retry_count else None,
                on_failure=Callback(on_failure) if on_failure else None,
                result_ttl=86400,
                failure_ttl=7 * 86400,
                description=description,
                meta={META_KEY: current_carrier()},
                at_front=at_front,
            )
        except BaseException:
            if lock is not None:
                redis.delete(lock)
            raise
        return Enqueued(job_id=job.id)
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(f"the job queue (Redis) is not answering: {exc}") from exc
