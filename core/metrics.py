"""Prometheus metrics that any process may record.

Workers and the web process are separate processes (often separate hosts), so
counters recorded through `inc`/`observe` are kept in this process's registry
and, when a Redis is reachable, mirrored into Redis hashes; `FleetCollector`
reads those hashes when the web process is scraped, so its /metrics shows the
fleet's totals. Names and labels are fixed here, in one table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

NAMESPACE = "ir"
REGISTRY = CollectorRegistry(auto_describe=True)

COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "slack_api_calls_total": ("Slack Web API calls by method and outcome", ("method", "outcome")),
    "llm_calls_total": ("LLM calls by outcome", ("outcome",)),
    "llm_tokens_total": ("LLM tokens by kind (input/output), counted from API responses", ("kind",)),
    "integration_errors_total": ("Evidence source failures by source", ("source",)),
    "investigations_started_total": ("Investigations started by source", ("source",)),
    "source_cache_total": ("Reads of the source cache by source kind and outcome (hit, miss)", ("kind", "outcome")),
    "ops_alerts_total": (
        "The responder's own trouble by signal and outcome (raised, deduplicated, unchecked: Redis did not answer)",
        ("signal", "outcome"),
    ),
    "ops_alert_deliveries_total": ("Ops alerts delivered to a target by signal and outcome (sent, failed)", ("signal", "outcome")),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "stage_duration_seconds": ("Time spent in each investigation stage", ("stage",), (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)),
}

_counters = {name: Counter(name.removesuffix("_total"), doc, labels, registry=REGISTRY) for name, (doc, labels) in COUNTERS.items()}
_histograms = {
    name: Histogram(name, doc, labels, buckets=buckets, registry=REGISTRY) for name, (doc, labels, buckets) in HISTOGRAMS.items()
}

# After Redis fails, stop mirroring for a while: a dead Redis must not add a connect timeout to every counter bump.
MIRROR_PAUSE_S = 30.0
_paused_until = 0.0
_SEP = "\t"


def inc(name: str, amount: float = 1.0, **labels: str) -> None:
    _counters[name].labels(**labels).inc(amount)
    _mirror(lambda pipe: pipe.hincrbyfloat(_key("c", name), _labels_field(labels), amount))


def observe(name: str, value: float, **labels: str) -> None:
    _histograms[name].labels(**labels).observe(value)
    buckets = HISTOGRAMS[name][2]
    le = next((str(float(b)) for b in buckets if value <= b), "+Inf")
    field = _labels_field(labels)

    def write(pipe: Any) -> None:
        key = _key("h", name)
        pipe.hincrby(key, f"{field}{_SEP}{le}", 1)
        pipe.hincrbyfloat(key, f"{field}{_SEP}sum", value)

    _mirror(write)


def _labels_field(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True)


def _key(kind: str, name: str) -> str:
    from core.settings import get_settings

    # The queue name already separates deployments (and test runs) that share one Redis.
    return f"ir:metrics:{get_settings().queue_name}:{kind}:{name}"


def _mirror(write: Any) -> None:
    global _paused_until
    if time.monotonic() < _paused_until:
        return
    try:
        from core.runtime import get_redis

        pipe = get_redis().pipeline(transaction=False)
        write(pipe)
        pipe.execute()
    except (RedisError, OSError) as exc:
        _paused_until = time.monotonic() + MIRROR_PAUSE_S
        log.warning("metrics_mirror_paused", error=str(exc), pause_s=MIRROR_PAUSE_S)


def resume_mirroring() -> None:
    """Mirror again right away (tests, and after Redis is known to be back)."""
    global _paused_until
    _paused_until = 0.0


class FleetCollector(Collector):
    """Exposes the Redis-mirrored counters and histograms of every process, read at scrape time."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        names = [("c", n) for n in COUNTERS] + [("h", n) for n in HISTOGRAMS]
        try:
            pipe = self.redis.pipeline(transaction=False)
            for kind, name in names:
                pipe.hgetall(_key(kind, name))
            hashes = pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("metrics_fleet_unreadable", error=str(exc))
            return
        for (kind, name), raw in zip(names, hashes, strict=True):
            values = {k.decode(): float(v) for k, v in raw.items()}
            yield _counter_family(name, values) if kind == "c" else _histogram_family(name, values)


def _counter_family(name: str, values: dict[str, float]) -> Metric:
    doc, label_names = COUNTERS[name]
    family = CounterMetricFamily(f"{NAMESPACE}_{name}", doc, labels=label_names)
    for field, value in sorted(values.items()):
        labels = json.loads(field)
        family.add_metric([str(labels.get(n, "")) for n in label_names], value)
    return family


def _histogram_family(name: str, values: dict[str, float]) -> Metric:
    doc, label_names, bounds = HISTOGRAMS[name]
    family = HistogramMetricFamily(f"{NAMESPACE}_{name}", doc, labels=label_names)
    per_labels: dict[str, dict[str, float]] = {}
    for field, value in values.items():
        labels, _, part = field.rpartition(_SEP)
        per_labels.setdefault(labels, {})[part] = value
    for labels_field, parts in sorted(per_labels.items()):
        labels = json.loads(labels_field)
        cumulative, buckets = 0.0, []
        for le in [*(str(float(b)) for b in bounds), "+Inf"]:
            cumulative += parts.get(le, 0.0)
            buckets.append((le, cumulative))
        family.add_metric([str(labels.get(n, "")) for n in label_names], buckets, parts.get("sum", 0.0))
    return family
