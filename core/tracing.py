"""OpenTelemetry set-up and the trace context that travels with a queued job.

Export happens only when OTEL_EXPORTER_OTLP_ENDPOINT is set; without it spans
still exist (log lines carry their trace id) but go nowhere. The web process
puts the current trace context into each job's `meta`; `TracedJob` continues it
in the worker, so one trace spans web -> queue -> worker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from rq.job import Job

TRACER_NAME = "incident-responder"
META_KEY = "otel"
_configured: TracerProvider | None = None


def configure_tracing(service_name: str, *, endpoint: str | None = None) -> TracerProvider:
    """Install the process's tracer provider once; `endpoint` defaults to the setting."""
    global _configured
    if _configured is not None:
        return _configured
    if endpoint is None:
        from core.settings import get_settings

        endpoint = get_settings().otel_exporter_otlp_endpoint
    installed = trace.get_tracer_provider()
    # OpenTelemetry lets a process set its provider once; if someone already did, add to theirs.
    provider = (
        installed if isinstance(installed, TracerProvider) else TracerProvider(resource=Resource.create({"service.name": service_name}))
    )
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
    if provider is not installed:
        trace.set_tracer_provider(provider)
    _configured = provider
    return provider


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a base endpoint (the variable names the collector, not the path)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


@cache
def tracer() -> trace.Tracer:
    # Looked up once: get_tracer builds a tracer per call, a cost every request paid. Taken before the provider is
    # set, it is OpenTelemetry's proxy, which follows the provider installed later.
    return trace.get_tracer(TRACER_NAME)


def current_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), empty outside a span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued_span(
    name: str, carrier: Mapping[str, str] | None, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any
) -> Iterator[Span]:
    """A span whose parent is the trace in `carrier` (from another process), or a new trace."""
    token = context.attach(propagate.extract(dict(carrier or {})))
    try:
        with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as span:
            yield span
    finally:
        context.detach(token)


class TracedJob(Job):
    """An RQ job that runs inside a span continuing the trace of whoever enqueued it."""

    def perform(self) -> Any:
        attributes: dict[str, Any] = {"job.id": self.id, "job.func": self.func_name}
        first = self.args[0] if self.args else None
        if isinstance(first, str) and first.startswith("inv_"):
            attributes["investigation.id"] = first
        carrier = (self.meta or {}).get(META_KEY)
        with continued_span(f"job {self.func_name}", carrier, kind=SpanKind.CONSUMER, **attributes):
            return super().perform()
