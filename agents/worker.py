"""The worker process: RQ jobs plus a sweeper for investigations nobody is running."""

from __future__ import annotations

import threading

import structlog
from rq import Worker

from agents.flows import requeue_waiting
from agents.jobs import reap_stale
from core.queue import get_queue
from core.runtime import get_redis
from core.tracing import TracedJob, configure_tracing

log = structlog.get_logger(__name__)

SWEEP_EVERY_S = 60.0


def _sweep_forever(stop: threading.Event) -> None:
    while not stop.wait(SWEEP_EVERY_S):
        try:
            reaped, requeued = reap_stale(), requeue_waiting()
            if reaped or requeued:
                log.info("sweep", reaped=reaped, requeued=requeued)
        except Exception:  # noqa: BLE001  (a failed sweep is retried next minute)
            log.exception("sweep_failed")


def run_worker(*, burst: bool = False) -> None:
    configure_tracing("incident-responder-worker")
    redis = get_redis()
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_sweep_forever, args=(stop,), name="sweeper", daemon=True).start()
    try:
        Worker([get_queue(redis)], connection=redis, job_class=TracedJob).work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        stop.set()
