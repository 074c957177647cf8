"""The worker process: RQ jobs plus a sweeper for investigations nobody is running."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import structlog
from rq import Worker

from agents import artifacts, history
from agents.crew.env import preload_crewai
from agents.flows import requeue_waiting
from agents.jobs import reap_stale
from agents.ops_alerts import check_queue
from core.queue import get_queue
from core.runtime import get_redis, get_store
from core.settings import get_settings
from core.tracing import TracedJob, configure_tracing

log = structlog.get_logger(__name__)

# A row younger than this may still be on its way into the queue; leave it to the request that made it.
MIN_REQUEUE_AGE_S = 5.0
# Delivery and idempotency claims outlive every sender's retries (Slack's hour, PagerDuty's, a client's backoff)
# by far at a week; the pruning runs at most hourly across workers.
CLAIMS_KEPT = timedelta(days=7)
FORGET_CLAIMS_EVERY_S = 3600


# RQ forks a work horse per job; a fork taken while the sweeper thread holds a lock (a log write, a pool checkout)
# leaves that lock held forever in the child. Forks wait for the sweep in progress instead.
_sweeping = threading.Lock()
os.register_at_fork(before=_sweeping.acquire, after_in_parent=_sweeping.release, after_in_child=_sweeping.release)


def _sweep_forever(stop: threading.Event, every_s: float) -> None:
    waiting_for = timedelta(seconds=max(MIN_REQUEUE_AGE_S, every_s))
    while not stop.wait(every_s):
        with _sweeping:
            _sweep_once(waiting_for)


def _sweep_once(waiting_for: timedelta) -> None:
    try:
        reaped, requeued = reap_stale(), requeue_waiting(older_than=waiting_for)
        pruned = artifacts.prune()
        forgotten = forget_old_claims()
        if reaped or requeued or pruned or forgotten:
            log.info("sweep", reaped=reaped, requeued=requeued, pruned_reports=pruned, forgotten_claims=forgotten)
    except Exception:  # a failed sweep is retried at the next one; the log has the cause
        log.exception("sweep_failed")
    try:
        check_queue(get_redis())
    except Exception:  # the same: the next sweep looks again
        log.exception("queue_check_failed")


def forget_old_claims(now: datetime | None = None) -> int:
    """Delete claims older than CLAIMS_KEPT, at most once an hour across workers (a Redis key gates it)."""
    if not get_redis().set(f"ir:claims-forgotten:{get_settings().queue_name}", "1", nx=True, ex=FORGET_CLAIMS_EVERY_S):
        return 0
    return get_store().forget_claims((now or datetime.now(UTC)) - CLAIMS_KEPT)


def run_worker(*, burst: bool = False) -> None:
    configure_tracing("incident-responder-worker")
    settings = get_settings()
    if settings.llm_enabled:
        # Each job runs in a forked work horse; importing crewai here spares every investigation its ~8 s import.
        preload_crewai(settings.data_dir)
    # Likewise the local embedding model of the incident history (~4 s and ~600 MB): loaded once, shared by the forks.
    history.warm_embedder(settings)
    redis = get_redis()
    every_s = settings.worker_sweep_interval_s
    queue = get_queue(redis)
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_sweep_forever, args=(stop, every_s), name="sweeper", daemon=True).start()
    # RQ's maintenance retries or fails jobs whose worker died and takes over a dead worker's scheduler (which runs
    # the retries); an idle worker only gets to it between blocking dequeues of `worker_ttl - 15` s (default 405).
    interval = max(1, int(every_s))
    worker = Worker(
        [queue],
        connection=redis,
        job_class=TracedJob,
        maintenance_interval=interval,
        worker_ttl=interval + 15,
        # RQ's default of 30 s let an abandoned run wait up to 90 s; the heartbeat is one Redis write.
        job_monitoring_interval=settings.worker_heartbeat_s,
    )
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        stop.set()
