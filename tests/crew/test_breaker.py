"""The LLM circuit breaker: opens after repeated failures, shared by every worker through Redis, in-process without it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from crew_fixtures import happy_script, make_alert, make_evidence, offline_report
from redis import Redis
from standin_openai import Reply, StandinOpenAI

from agents.crew.breaker import Breaker, breaker_for
from agents.crew.runner import endpoint_key, run_crew
from core.settings import Settings


def test_breaker_opens_after_threshold_failures_and_a_probe_failure_reopens_it(redis_conn: Redis) -> None:
    breaker = Breaker(f"test-{uuid.uuid4().hex}", redis=redis_conn, threshold=3, cooldown_s=0.5)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert not breaker.allow()
    time.sleep(0.6)
    assert breaker.allow()
    breaker.record_failure()
    assert not breaker.allow()
    breaker.reset()


def test_a_success_closes_the_count(redis_conn: Redis) -> None:
    breaker = Breaker(f"test-{uuid.uuid4().hex}", redis=redis_conn, threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.allow()
    breaker.reset()


def test_two_workers_share_the_breaker_through_redis(redis_conn: Redis, app_env: dict[str, str]) -> None:
    name = f"test-{uuid.uuid4().hex}"
    # Two connections, as two worker processes would have.
    worker_a = Breaker(name, redis=Redis.from_url(app_env["REDIS_URL"]), threshold=2)
    worker_b = Breaker(name, redis=redis_conn, threshold=2)
    worker_a.record_failure()
    worker_b.record_failure()
    assert not worker_a.allow() and not worker_b.allow()
    worker_a.reset()


def test_without_redis_the_breaker_lives_in_the_process() -> None:
    breaker = breaker_for("redis://127.0.0.1:1/0", f"test-{uuid.uuid4().hex}")
    assert not breaker.shared
    breaker.threshold = 2
    breaker.record_failure()
    breaker.record_failure()
    assert not breaker.allow()
    breaker.reset()


def test_after_repeated_failed_runs_the_crew_is_skipped_without_calling_the_llm(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any, redis_conn: Redis
) -> None:
    settings = crew_settings.model_copy(update={"llm_max_retries": 0})
    breaker_for(settings.redis_url, endpoint_key(settings)).reset()
    alert, evidence = make_alert(), make_evidence()
    standin.script = lambda call: Reply.error(503)
    reasons = []
    for _ in range(4):
        report = run_crew(
            evidence=evidence, alert=alert, offline=offline_report(evidence, alert), settings=settings, progress=progress, has_metrics=True
        )
        reasons.append(report.degraded[-1].reason)
        if "circuit breaker" in reasons[-1]:
            break
    assert "circuit breaker is open" in reasons[-1]
    calls_before = len(standin.calls)
    standin.script = happy_script()
    report = run_crew(
        evidence=evidence, alert=alert, offline=offline_report(evidence, alert), settings=settings, progress=progress, has_metrics=True
    )
    assert len(standin.calls) == calls_before
    assert report.analyst == "offline"
    assert report.usage.llm_calls == 0
    breaker_for(settings.redis_url, endpoint_key(settings)).reset()
