"""The responder alerts on its own trouble: each signal reaches the ops target once per period, and is counted.

The ops target is a webhook receiver on loopback verifying Standard Webhooks
signatures (the catalog's `defaults.ops_notify`); queued notices are run by a real
RQ worker on the machine's Redis, under a queue name (and so key prefix) of the
test's own. Counts are read back as /metrics reads them, from the Redis mirror.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bot_harness import Worker
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from standin_receiver import Answer, Receiver

from agents import jobs, ops_alerts
from agents.crew.breaker import breaker_for
from agents.flows import open_investigation, window_for
from agents.report import Degraded
from agents.worker import _sweep_once
from core.alert import Alert
from core.catalog import CatalogError
from core.metrics import REGISTRY, FleetCollector, resume_mirroring
from core.models import Investigation, Source, Status
from core.queue import enqueue
from core.runtime import get_redis, get_store, reset_runtime
from core.settings import reset_settings
from integrations.catalog import get_catalog, load_checked_catalog
from tests.conftest import REDIS_URL
from tests.standins.loopback import free_port
from web.observability import WebMetrics

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "checkout-discount-crash"
SIGNING = "whsec_" + base64.b64encode(b"an-ops-webhook-secret-32-bytes!!").decode()
AT = datetime(2026, 3, 10, 13, 38, 14, tzinfo=UTC)


def _catalog(tmp_path: Path, ops_notify: str) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(
        f"""
defaults:
  ops_notify:
{ops_notify}
services:
  checkout:
    logs:
      - {{kind: files, paths: ["{EXAMPLE}/logs"]}}
    deploys:
      - {{kind: deploys_file, name: release-log, path: "{tmp_path}/missing-deploys.json"}}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def ops(app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    receiver = Receiver(secret=SIGNING).start()
    monkeypatch.setenv("OPS_HOOK_SECRET", SIGNING)
    ops_notify = f'    - {{kind: webhook, name: ops, url: "{receiver.url}/ops", secret_env: OPS_HOOK_SECRET, timeout_s: 2}}'
    monkeypatch.setenv("SERVICES_FILE", str(_catalog(tmp_path, ops_notify)))
    monkeypatch.setenv("PUBLIC_URL", "http://ir.test")
    reset_settings()
    resume_mirroring()
    yield receiver
    receiver.stop()


def _worker(app_env: dict[str, str]) -> Worker:
    return Worker(Redis.from_url(REDIS_URL), app_env["QUEUE_NAME"])


def counted(name: str, **labels: str) -> float:
    """A counter as the web process's /metrics shows it: the fleet's total, read from the Redis mirror."""
    for family in FleetCollector(get_redis()).collect():
        for sample in family.samples:
            if sample.name == f"ir_{name}" and sample.labels == labels:
                return float(sample.value)
    return 0.0


def _row(service: str = "checkout") -> Investigation:
    """A recorded investigation with no job queued for it, as one whose job RQ gave up on."""
    return get_store().create_investigation(
        Investigation(
            source=Source.api.value,
            service=service,
            title=f"{service} 500s",
            alert={"title": f"{service} 500s", "service": service, "created_at": AT.isoformat()},
            window_start=AT - timedelta(hours=1),
            window_end=AT,
            at=AT,
        )
    )


class LastTry:
    """What RQ hands the failure callback after the last retry."""

    should_retry = False

    def __init__(self, job_id: str) -> None:
        self.id = job_id


def test_a_job_that_fails_for_good_is_sent_once_per_period_and_counted(ops: Receiver, app_env: dict[str, str]) -> None:
    first, second = _row(), _row()

    jobs.on_investigation_failure(LastTry(first.id), None, TimeoutError, TimeoutError("the job ran past 600 s"), None)
    jobs.on_investigation_failure(LastTry(second.id), None, TimeoutError, TimeoutError("the job ran past 600 s"), None)
    _worker(app_env).drain()

    assert get_store().require(first.id).status == Status.failed.value == get_store().require(second.id).status
    [got] = ops.received
    body = got.json()
    assert body["type"] == "responder.ops_alert" and body["signal"] == "job_failed" and body["subject"] == "checkout"
    assert first.id in body["text"] and "TimeoutError: the job ran past 600 s" in body["text"]
    assert body["link"] == f"http://ir.test/investigations/{first.id}"
    assert ops.refused == []
    assert counted("ops_alerts_total", signal="job_failed", outcome="raised") == 1
    assert counted("ops_alerts_total", signal="job_failed", outcome="deduplicated") == 1
    assert counted("ops_alert_deliveries_total", signal="job_failed", outcome="sent") == 1
    assert b'ir_ops_alerts_total{outcome="raised",signal="job_failed"} 1.0' in WebMetrics().exposition()


def test_a_retried_delivery_job_keeps_its_webhook_id(ops: Receiver, app_env: dict[str, str]) -> None:
    ops.script(Answer(503))
    row = _row()

    jobs.mark_failed(row.id, "the worker running it stopped and no retry is left")
    worker = _worker(app_env)
    worker.drain()
    assert ops.received == []
    # The 503 sent the job back for another try; RQ's scheduler would queue it in 10 s: queue it now.
    [job_id] = _scheduled(app_env)
    queue = Queue(app_env["QUEUE_NAME"], connection=get_redis())
    ScheduledJobRegistry(queue=queue).remove(job_id)
    queue.enqueue_job(Job.fetch(job_id, connection=get_redis()))
    worker.drain()

    [got] = ops.received
    assert got.headers["webhook-id"] == job_id
    assert counted("ops_alert_deliveries_total", signal="job_failed", outcome="sent") == 1


def _scheduled(app_env: dict[str, str]) -> list[str]:
    return list(ScheduledJobRegistry(queue=Queue(app_env["QUEUE_NAME"], connection=get_redis())).get_job_ids())


def test_a_source_failing_n_investigations_in_a_row_is_sent_once(
    ops: Receiver, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_SOURCE_FAILURES", "2")
    reset_settings()
    alert = Alert(title="checkout 500s on /pay", service="checkout", created_at=AT)
    ids = []
    for _ in range(3):
        row, _ = open_investigation(alert=alert, service="checkout", source=Source.api, window=window_for(get_catalog(), at=AT))
        _worker(app_env).drain()
        ids.append(row.id)
        if len(ids) == 1:
            assert ops.received == []

    assert all(get_store().require(i).status == Status.degraded.value for i in ids)
    [got] = ops.received
    body = got.json()
    assert body["signal"] == "source_failing" and body["subject"] == "checkout deploys:release-log"
    assert body["title"] == "deploys:release-log of checkout failed 2 investigations in a row"
    assert ids[1] in body["text"] and "missing-deploys.json cannot be read" in body["text"]
    # The log source read fine every time: it is not counted, let alone alerted on.
    assert all("logs:" not in r.json()["subject"] for r in ops.received)
    assert counted("ops_alerts_total", signal="source_failing", outcome="raised") == 1
    assert counted("ops_alerts_total", signal="source_failing", outcome="deduplicated") == 1


def test_a_clean_run_resets_the_count(ops: Receiver, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_SOURCE_FAILURES", "2")
    reset_settings()
    down = [Degraded(component="metrics:prometheus:rate(http_errors[5m])", reason="503 from prometheus")]
    labels = ["metrics:prometheus", "logs:files"]

    assert ops_alerts.record_source_runs("checkout", labels, down, "inv_1") == []
    assert ops_alerts.record_source_runs("checkout", labels, [], "inv_2") == []
    assert ops_alerts.record_source_runs("checkout", labels, down, "inv_3") == []
    # Another service's runs are counted apart.
    assert ops_alerts.record_source_runs("payments", labels, down, "inv_4") == []
    assert ops_alerts.record_source_runs("checkout", labels, down, "inv_5") == ["metrics:prometheus"]
    _worker(app_env).drain()

    [got] = ops.received
    assert got.json()["subject"] == "checkout metrics:prometheus" and "inv_5" in got.json()["text"]


def test_the_llm_breaker_opening_is_sent_once_per_period(ops: Receiver, app_env: dict[str, str]) -> None:
    breaker = breaker_for(REDIS_URL, f"llm:http://127.0.0.1:9/v1:{app_env['QUEUE_NAME']}")
    breaker.threshold = 2
    try:
        for _ in range(2):
            breaker.record_failure()
        assert not breaker.allow()
        # It closes, and opens again within the period: counted, not sent again.
        breaker.reset()
        for _ in range(2):
            breaker.record_failure()
        _worker(app_env).drain()
    finally:
        breaker.reset()

    [got] = ops.received
    assert got.json()["signal"] == "llm_breaker_open" and "offline analyst" in got.json()["text"]
    assert counted("ops_alerts_total", signal="llm_breaker_open", outcome="raised") == 1
    assert counted("ops_alerts_total", signal="llm_breaker_open", outcome="deduplicated") == 1


def _fill_queue(app_env: dict[str, str], n: int) -> None:
    for i in range(n):
        enqueue(get_redis(), "agents.jobs.index_investigation", f"inv_waiting_{i}", job_id=f"{app_env['QUEUE_NAME']}-waiting-{i}")


def test_a_backed_up_queue_is_sent_by_the_sweep_itself_once(
    ops: Receiver, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_QUEUE_DEPTH", "3")
    reset_settings()
    _fill_queue(app_env, 2)
    _sweep_once(timedelta(seconds=5))
    assert ops.received == []

    enqueue(get_redis(), "agents.jobs.index_investigation", "inv_waiting_x", job_id=f"{app_env['QUEUE_NAME']}-x")
    _sweep_once(timedelta(seconds=5))
    _sweep_once(timedelta(seconds=5))

    [got] = ops.received
    body = got.json()
    assert body["signal"] == "queue_backlog" and body["subject"] == app_env["QUEUE_NAME"]
    assert body["text"].startswith("3 jobs waiting (alert at 3)")
    assert counted("ops_alerts_total", signal="queue_backlog", outcome="raised") == 1
    assert counted("ops_alerts_total", signal="queue_backlog", outcome="deduplicated") == 1
    assert counted("ops_alert_deliveries_total", signal="queue_backlog", outcome="sent") == 1


def test_an_old_waiting_job_is_a_backlog_too(ops: Receiver, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_QUEUE_DEPTH", "0")
    monkeypatch.setenv("OPS_QUEUE_AGE_S", "1")
    reset_settings()
    _fill_queue(app_env, 1)
    assert ops_alerts.check_queue(get_redis()) is None
    time.sleep(1.2)

    assert ops_alerts.check_queue(get_redis()) == "raised"
    [got] = ops.received
    assert "1 jobs waiting" in got.json()["text"] and "the oldest has waited 1 s" in got.json()["text"]


def test_a_target_that_cannot_take_the_notice_is_logged_and_counted_nothing_more(
    app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing = Receiver(ok_status=403).start()
    ops_notify = "\n".join(
        [
            f'    - {{kind: webhook, name: down, url: "http://127.0.0.1:{free_port()}/ops", timeout_s: 1}}',
            f'    - {{kind: webhook, name: refusing, url: "{refusing.url}/ops"}}',
        ]
    )
    monkeypatch.setenv("SERVICES_FILE", str(_catalog(tmp_path, ops_notify)))
    monkeypatch.setenv("OPS_QUEUE_DEPTH", "1")
    reset_settings()
    resume_mirroring()
    try:
        _fill_queue(app_env, 1)
        _sweep_once(timedelta(seconds=5))
        row = _row()
        jobs.mark_failed(row.id, "boom")
        _worker(app_env).drain()
    finally:
        refusing.stop()

    assert get_store().require(row.id).status == Status.failed.value
    # The sweep: both failed (one try); the queued job: refused for good at once, the other sent back for a retry.
    assert counted("ops_alert_deliveries_total", signal="queue_backlog", outcome="failed") == 2
    assert counted("ops_alert_deliveries_total", signal="job_failed", outcome="failed") == 1
    assert len(_scheduled(app_env)) == 1


def test_ops_targets_are_checked_like_any_notify_target(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "defaults:\n  ops_notify:\n    - {kind: webhook, urll: https://ops.example.com}\n    - {kind: pagerduty}\nservices: {}\n",
        encoding="utf-8",
    )

    with pytest.raises(CatalogError) as caught:
        load_checked_catalog(path)

    problems = "\n".join(caught.value.problems)
    assert ":3: defaults.ops_notify.0.urll: unknown option 'urll' for a 'webhook' source (did you mean 'url'?)" in problems
    assert ":4: defaults.ops_notify.1.kind: unknown notify source kind 'pagerduty'" in problems


def test_the_commented_ops_notify_example_in_services_example_yaml_is_valid(tmp_path: Path) -> None:
    # Commented out there (the example is the offline demo, which should post nowhere), so checked here.
    lines = (REPO / "services.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("  # ops_notify:")
    block = [lines[start], lines[start + 1]]
    assert block[1].startswith("  #   - {kind: ")
    path = tmp_path / "services.yaml"
    path.write_text("defaults:\n" + "\n".join(line.replace("# ", "", 1) for line in block) + "\nservices: {}\n", encoding="utf-8")

    catalog = load_checked_catalog(path)

    assert [spec.kind for spec in catalog.defaults.ops_notify] == ["slack"]


def test_without_redis_an_alert_is_logged_and_counted_here_never_sent(ops: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    reset_runtime()
    before = REGISTRY.get_sample_value("ops_alerts_total", {"signal": "job_failed", "outcome": "unchecked"}) or 0.0
    try:
        outcome = ops_alerts.investigation_failed("inv_no_redis", "checkout", "boom")
    finally:
        resume_mirroring()

    assert outcome == "unchecked" and ops.received == []
    assert REGISTRY.get_sample_value("ops_alerts_total", {"signal": "job_failed", "outcome": "unchecked"}) == before + 1
