"""Prometheus /metrics for the whole deployment, seen from the web process.

At scrape time: investigations by status/category/source (from the database),
queue depth and oldest job age (from Redis), and the counters every process
mirrors into Redis (LLM, Slack, integrations, stage durations; see
core.metrics). HTTP latency is this process's own. A part that cannot be read
is left out of the scrape (and logged) rather than failing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from starlette.concurrency import run_in_threadpool

from core.metrics import NAMESPACE, FleetCollector
from core.runtime import get_redis, get_store
from core.settings import get_settings

log = structlog.get_logger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class InvestigationsCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        try:
            counts = get_store().investigation_counts()
        except Exception as exc:  # noqa: BLE001  (database down: the rest of the scrape is still worth having)
            log.warning("metrics_investigations_unreadable", error=str(exc))
            return
        family = GaugeMetricFamily(
            f"{NAMESPACE}_investigations", "Investigations by status, category and source", labels=("status", "category", "source")
        )
        for status, category, source, n in counts:
            family.add_metric([status, category or "none", source], n)
        yield family


class QueueCollector(Collector):
    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    def collect(self) -> Iterator[Metric]:
        labels = [self.queue_name]
        try:
            queue = Queue(self.queue_name, connection=self.redis)
            depth = queue.count
            running = StartedJobRegistry(queue=queue).count
            failed = FailedJobRegistry(queue=queue).count
            oldest = self._oldest_age_s(queue)
        except Exception as exc:  # noqa: BLE001  (Redis down: report nothing rather than fail the scrape)
            log.warning("metrics_queue_unreadable", error=str(exc))
            return
        for name, doc, value in (
            ("queue_depth", "Jobs waiting in the queue", depth),
            ("queue_oldest_age_seconds", "Age of the oldest waiting job (0 when empty)", oldest),
            ("queue_running", "Jobs being run by a worker", running),
            ("queue_failed", "Jobs in the failed registry", failed),
        ):
            family = GaugeMetricFamily(f"{NAMESPACE}_{name}", doc, labels=("queue",))
            family.add_metric(labels, value)
            yield family

    def _oldest_age_s(self, queue: Queue) -> float:
        ids = queue.get_job_ids(0, 0)
        if not ids:
            return 0.0
        job = Job.fetch(ids[0], connection=self.redis)
        if job.enqueued_at is None:
            return 0.0
        enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
        return max(0.0, (datetime.now(UTC) - enqueued).total_seconds())


class WebMetrics:
    """The registry /metrics serves, and the HTTP latency histogram the request middleware feeds."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http_latency = Histogram(
            f"{NAMESPACE}_http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        redis = get_redis()
        self.registry.register(InvestigationsCollector())
        self.registry.register(QueueCollector(redis, get_settings().queue_name))
        self.registry.register(FleetCollector(redis))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_latency.labels(method, route, str(status)).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    web_metrics: WebMetrics = request.app.state.metrics
    return Response(await run_in_threadpool(web_metrics.exposition), media_type=CONTENT_TYPE_LATEST)
