"""/metrics as Prometheus parses it, and traces that continue from the web into a worker's job."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from web_harness import REDIS_URL, Keys, Server, make_investigation

from core import metrics
from core.queue import claim_key, enqueue
from core.runtime import reset_runtime
from core.settings import reset_settings
from core.store import Store
from core.tracing import TracedJob, configure_tracing, tracer


def _scrape(server: Server) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = server.client().get("/metrics")
    assert response.status_code == 200
    families = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = [(sample.labels, sample.value) for sample in family.samples]
    return families


@pytest.fixture
def same_deployment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """This test process records metrics into the server's Redis namespace, like a worker of that deployment."""
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("QUEUE_NAME", server.queue_name)
    reset_settings()
    reset_runtime()
    metrics.resume_mirroring()
    yield
    reset_settings()
    reset_runtime()


def test_metrics_show_investigations_queue_http_latency_and_worker_counters(
    server: Server, keys: Keys, web_store: Store, same_deployment: None
) -> None:
    make_investigation(web_store)
    server.client(keys.write).post("/api/v1/investigations", json={"service": "checkout", "alert_text": "slow"})
    metrics.inc("llm_calls_total", outcome="ok")
    metrics.inc("llm_tokens_total", 1200, kind="input")
    metrics.inc("slack_api_calls_total", method="chat.postMessage", outcome="error")
    metrics.inc("integration_errors_total", source="github")
    metrics.observe("stage_duration_seconds", 3.0, stage="gathering")

    families = _scrape(server)

    by_status = {(labels["status"], labels["category"]): value for labels, value in families["ir_investigations"]}
    assert by_status[("done", "bad_deploy")] >= 1
    ((queue_labels, depth),) = families["ir_queue_depth"]
    assert queue_labels == {"queue": server.queue_name} and depth >= 1
    assert families["ir_queue_oldest_age_seconds"][0][1] >= 0
    assert ({"outcome": "ok"}, 1.0) in families["ir_llm_calls"]
    assert ({"kind": "input"}, 1200.0) in families["ir_llm_tokens"]
    assert ({"method": "chat.postMessage", "outcome": "error"}, 1.0) in families["ir_slack_api_calls"]
    assert ({"source": "github"}, 1.0) in families["ir_integration_errors"]
    stage = {(s.get("le", ""), v) for s, v in families["ir_stage_duration_seconds"] if s.get("stage") == "gathering"}
    assert ("5.0", 1.0) in stage and ("2.0", 0.0) in stage
    routes = {labels["route"] for labels, _ in families["ir_http_request_duration_seconds"]}
    assert "/api/v1/investigations" in routes


def test_a_job_enqueued_inside_a_span_runs_in_the_same_trace_with_the_investigation_id(same_deployment: None) -> None:
    provider = configure_tracing("test")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    redis = Redis.from_url(REDIS_URL)
    job_id = f"inv_trace{uuid.uuid4().hex[:8]}"  # job ids are claimed for a week: never reuse one across runs
    with tracer().start_as_current_span("web request") as parent:
        enqueue(redis, "os.path.basename", job_id, job_id=job_id, retries=0)
        trace_id = parent.get_span_context().trace_id
    job = TracedJob.fetch(job_id, connection=redis)
    try:
        assert job.perform() == job_id
        job_span = next(s for s in exporter.get_finished_spans() if s.name == "job os.path.basename")
        assert job_span.context.trace_id == trace_id
        assert job_span.attributes is not None and job_span.attributes["investigation.id"] == job_id
        assert job_span.kind is trace.SpanKind.CONSUMER
    finally:
        job.delete()
        redis.delete(claim_key(job_id))
