"""Remote log stores under trouble: slow answers, reset connections, 5xx and 429 storms, truncated JSON, a page loop,
a claimed total of billions.

Each fault sits in a loopback front between the real client and the store's stand-in.
Whatever the fault, the read ends within its deadline, what was read is kept and marked,
memory stays within the caps, and the source is one degraded entry, not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hostile_front import HostileFront
from standin_datadog_logs import DatadogLog, DatadogLogsStandin
from standin_loki import LokiStandin

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from core.alert import Alert
from core.degraded import Degradation
from integrations.logs.datadog import DatadogLogsOptions, DatadogLogSource
from integrations.logs.loki import LokiOptions, LokiStore
from integrations.logs.store import LogStore
from integrations.registry import ServiceSources
from integrations.roles import LOGS

START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DEADLINE_S = 3.0
# Reading within the deadline, plus the time one request may still take to return, plus the engine's own work.
WITHIN_S = DEADLINE_S + 4.0


@pytest.fixture
def datadog(monkeypatch: pytest.MonkeyPatch) -> Iterator[DatadogLogsStandin]:
    standin = DatadogLogsStandin(
        logs=[DatadogLog(START + timedelta(seconds=3 * i), f"payment failed for order {i}", status="error") for i in range(1200)]
    )
    monkeypatch.setenv("DD_API_KEY", standin.api_key)
    monkeypatch.setenv("DD_APP_KEY", standin.app_key)
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def loki() -> Iterator[LokiStandin]:
    standin = LokiStandin()
    first = int(START.timestamp() * 1e9)
    standin.push({"app": "checkout"}, [(first + i * 3_000_000_000, f'level=error msg="payment failed for order {i}"') for i in range(1200)])
    standin.start()
    yield standin
    standin.stop()


def _datadog(url: str) -> DatadogLogSource:
    options = {
        "api_url": url,
        "query": "service:checkout",
        "page_size": 50,
        "deadline_s": DEADLINE_S,
        "timeout_s": 1.0,
        "retries": 3,
        "cache_ttl_s": 0,
    }
    return DatadogLogSource(DatadogLogsOptions.model_validate(options))


def _loki(url: str) -> LokiStore:
    options = {
        "url": url,
        "query": '{app="checkout"}',
        "page_size": 50,
        "deadline_s": DEADLINE_S,
        "timeout_s": 1.0,
        "retries": 3,
        "cache_ttl_s": 0,
    }
    return LokiStore(LokiOptions.model_validate(options))


def _read(source: LogStore) -> tuple[float, int, list[Degradation], dict[str, Any]]:
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="checkout", created_at=END),
        service="checkout",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [source]}),
        log_deadline_s=30.0,
    )
    degraded: list[Degradation] = []
    reads: list[dict[str, Any]] = []
    began = time.monotonic()
    stats = read_logs(inputs, lambda *_: None, degraded, reads)
    (read,) = reads
    return time.monotonic() - began, stats.events, [d for d in degraded if d.component == f"logs:{source.name}"], read


MAKERS = {"datadog": _datadog, "loki": _loki}


@pytest.fixture(params=sorted(MAKERS))
def store(request: pytest.FixtureRequest, datadog: DatadogLogsStandin, loki: LokiStandin) -> tuple[str, str]:
    return request.param, {"datadog": datadog.url, "loki": loki.url}[request.param]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"slow_s": 0.7}, id="slow answers"),
        pytest.param({"reset": True}, id="connections reset"),
        pytest.param({"storm": 503}, id="5xx storm"),
        pytest.param({"storm": 429}, id="429 storm"),
        pytest.param({"truncate": True}, id="truncated JSON"),
    ],
)
def test_a_faulty_store_ends_within_its_deadline_as_one_degraded_entry(store: tuple[str, str], fault: dict[str, Any]) -> None:
    name, upstream = store
    front = HostileFront(upstream, **fault).start()
    try:
        seconds, events, degraded, read = _read(MAKERS[name](front.url))
    finally:
        front.stop()

    assert seconds < WITHIN_S, f"{name} read for {seconds:.1f}s under {fault}"
    assert len({d.reason for d in degraded}) == 1, degraded
    assert "Traceback" not in degraded[0].reason and "\n" not in degraded[0].reason
    if events:
        # Pages read before the fault won: kept, and the account says the read was cut.
        assert read["truncated"], read
    assert events <= 1200


def test_slow_pages_keep_what_was_read_by_the_deadline_and_say_so(store: tuple[str, str]) -> None:
    name, upstream = store
    front = HostileFront(upstream, slow_s=0.25).start()
    try:
        seconds, events, degraded, read = _read(MAKERS[name](front.url))
    finally:
        front.stop()

    assert seconds < WITHIN_S
    assert 0 < events < 1200
    assert read["truncated"]
    assert [d.reason for d in degraded if d.reason.startswith("truncated:")], degraded


def test_a_page_loop_is_stopped_instead_of_read_for_ever(store: tuple[str, str]) -> None:
    name, upstream = store
    front = HostileFront(upstream, loop=True).start()
    try:
        seconds, events, degraded, read = _read(MAKERS[name](front.url))
    finally:
        front.stop()

    assert seconds < WITHIN_S
    # The same page again is refused as a loop: the pages before it count, the read is marked cut.
    assert events <= 50 * 8, (events, read)
    assert front.requests < 100, front.requests
    assert any("loop" in d.reason for d in degraded), degraded


def test_a_claimed_total_of_billions_changes_nothing(datadog: DatadogLogsStandin) -> None:
    front = HostileFront(datadog.url, claim=("meta.page.total", 4_000_000_000)).start()
    try:
        seconds, events, degraded, read = _read(_datadog(front.url))
    finally:
        front.stop()

    assert seconds < WITHIN_S
    assert events == 1200 and read["truncated"] is None
    assert not [d for d in degraded if d.reason.startswith("truncated")]
