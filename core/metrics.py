"""Prometheus metrics that any process may record.

Workers and the web process are separate processes (often separate hosts), so
counters recorded through `inc`/`observe` are kept in this process's registry
and, when a Redis is reachable, mirrored there so the web process's /metrics
shows the fleet's totals. Names and labels are fixed here, in one table.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "slack_api_calls_total": ("Slack Web API calls by method and outcome", ("method", "outcome")),
    "llm_calls_total": ("LLM calls by outcome", ("outcome",)),
    "llm_tokens_total": ("LLM tokens by kind (input/output), counted from API responses", ("kind",)),
    "integration_errors_total": ("Evidence source failures by source", ("source",)),
    "investigations_started_total": ("Investigations started by source", ("source",)),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "stage_duration_seconds": ("Time spent in each investigation stage", ("stage",), (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)),
}

_counters = {name: Counter(name.removesuffix("_total"), doc, labels, registry=REGISTRY) for name, (doc, labels) in COUNTERS.items()}
_histograms = {name: Histogram(name, doc, labels, buckets=buckets, registry=REGISTRY) for name, (doc, labels, buckets) in HISTOGRAMS.items()}


def inc(name: str, amount: float = 1.0, **labels: str) -> None:
    _counters[name].labels(**labels).inc(amount)


def observe(name: str, value: float, **labels: str) -> None:
    _histograms[name].labels(**labels).observe(value)
