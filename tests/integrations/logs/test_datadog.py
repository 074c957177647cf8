"""The `datadog` log kind through datadog-api-client against a Datadog log search stand-in: pages, limits, keys, deadline."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from standin_datadog_logs import DatadogLog, DatadogLogsStandin
from store_kit import engine_read, stored

from contracts import END, SECRET_DIR, START, WINDOW, Broken, LogRecord, LogStoreContract, MakeLogSource, Options
from integrations.logs import datadog
from integrations.logs.datadog import DatadogLogsOptions, DatadogLogSource


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> DatadogLogsStandin:
    """The keys every stand-in accepts, in the environment variables the kind reads by default."""
    standin = DatadogLogsStandin()
    monkeypatch.setenv("DD_API_KEY", standin.api_key)
    monkeypatch.setenv("DD_APP_KEY", standin.app_key)
    return standin


@pytest.fixture
def standin(keys: DatadogLogsStandin) -> Iterator[DatadogLogsStandin]:
    keys.start()
    yield keys
    keys.stop()


def _source(standin: DatadogLogsStandin, **extra: Any) -> DatadogLogSource:
    return DatadogLogSource(DatadogLogsOptions.model_validate({"api_url": standin.url, "query": "service:checkout", **extra}))


def _logs(count: int, *, every: timedelta = timedelta(seconds=1)) -> list[DatadogLog]:
    return [DatadogLog(START + every * i, f"payment failed for order {i}", status="error") for i in range(count)]


class TestDatadogContract(LogStoreContract):
    kind = datadog.KIND
    stamped_on_arrival = True

    @pytest.fixture
    def make_source(self, keys: DatadogLogsStandin) -> Iterator[MakeLogSource]:
        servers: list[DatadogLogsStandin] = []

        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = DatadogLogsStandin(endless=endless).start()
            servers.append(server)
            server.logs = [DatadogLog(entry.at, entry.line, status=entry.level) for entry in stored(records)]
            return {"api_url": server.url, "query": "service:checkout", "page_size": 3}

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture(params=["unreachable", "keys refused"])
    def broken_source(self, request: pytest.FixtureRequest, standin: DatadogLogsStandin, monkeypatch: pytest.MonkeyPatch) -> Broken:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:9/{SECRET_DIR}"
            return Broken({"api_url": url, "deadline_s": 2, "retries": 1}, target=url)
        monkeypatch.setenv("DD_APP_KEY", "not-the-key")
        url = f"{standin.url}/{SECRET_DIR}"
        return Broken({"api_url": url}, target=url)


def test_a_window_is_read_across_pages_with_the_cursor_in_time_order(standin: DatadogLogsStandin) -> None:
    standin.logs = list(reversed(_logs(2500)))
    source = _source(standin)

    events = list(source.events(*WINDOW))

    assert len(events) == 2500
    assert [e.ts for e in events] == [START + timedelta(seconds=i) for i in range(2500)]
    assert events[0].level == "error" and events[0].message == "payment failed for order 0"
    bodies = [s.body for s in standin.searches]
    assert [b["page"].get("cursor") is None for b in bodies] == [True, False, False]
    assert all(b["page"]["limit"] == 1000 and b["sort"] == "timestamp" for b in bodies)
    assert bodies[0]["filter"] == {
        "from": "2026-03-10T11:00:00.000Z",
        "to": "2026-03-10T12:00:00.001Z",
        "query": "service:checkout",
        "indexes": ["*"],
    }
    assert source.account.api_calls == 3 and source.account.events == 2500 and source.account.truncated is None


def test_attributes_tags_host_and_service_fill_the_event(standin: DatadogLogsStandin) -> None:
    standin.logs = [
        DatadogLog(
            START + timedelta(minutes=5),
            "GET /cart 503",
            status="warn",
            host="ip-10-0-0-7",
            tags=["env:prod", "kube_namespace:shop", "pod_name:checkout-7d9f"],
            attributes={"http": {"method": "GET", "status_code": 503}, "duration_ms": 812, "trace_id": "abc123"},
        )
    ]

    (event,) = _source(standin).events(*WINDOW)

    assert (event.level, event.message) == ("warning", "GET /cart 503")
    assert (event.service, event.host, event.pod, event.trace_id, event.duration_ms) == (
        "checkout",
        "ip-10-0-0-7",
        "checkout-7d9f",
        "abc123",
        812.0,
    )
    assert event.attributes["http.method"] == "GET" and event.attributes["kube_namespace"] == "shop"


def test_a_stack_trace_message_keeps_its_frames(standin: DatadogLogsStandin) -> None:
    trace = 'Traceback (most recent call last):\n  File "/app/pay.py", line 42, in charge\n    card.charge()\nValueError: card declined'
    standin.logs = [DatadogLog(START + timedelta(minutes=1), trace, status="error")]

    (event,) = _source(standin).events(*WINDOW)

    assert event.level == "error"
    assert event.frames and event.frames[-1].file == "/app/pay.py" and event.frames[-1].line == 42
    assert "ValueError: card declined" in event.message


def test_a_search_that_timed_out_is_kept_and_marked_partial(standin: DatadogLogsStandin) -> None:
    standin.logs = _logs(5)
    standin.timed_out = 1
    source = _source(standin)

    assert len(list(source.events(*WINDOW))) == 5
    assert source.account.partial == ["Datadog ended a search page early (status timeout): some logs may be missing"]


def test_429_waits_for_the_rate_limit_reset_then_reads(standin: DatadogLogsStandin) -> None:
    standin.logs = _logs(30)
    standin.rate_limit(times=2, reset_s=1)
    source = _source(standin, page_size=10)
    began = time.monotonic()

    events = list(source.events(*WINDOW))

    assert len(events) == 30
    assert time.monotonic() - began >= 2.0
    assert source.account.api_calls == 5 and source.account.truncated is None


def test_refused_keys_become_one_degraded_entry_naming_the_keys_and_the_permission(
    standin: DatadogLogsStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_API_KEY", "revoked")
    standin.logs = _logs(10)

    events, degraded, _reads = engine_read(_source(standin))

    assert events == 0
    (reason,) = {d.reason for d in degraded if d.component == "logs:datadog" and "found no events" not in d.reason}
    assert "refused the keys (403: Forbidden)" in reason
    assert "DD_API_KEY" in reason and "logs_read_data" in reason
    assert "revoked" not in reason and "\n" not in reason
    # A refusal is not retried, and it ends the read: the other slices would meet the same refusal.
    assert len(standin.searches) == 1


def test_a_bad_query_is_one_clear_error_with_datadogs_reason(standin: DatadogLogsStandin) -> None:
    events, degraded, _ = engine_read(_source(standin, query="service:(checkout"))

    assert events == 0
    (reason,) = {d.reason for d in degraded if d.component == "logs:datadog" and "found no events" not in d.reason}
    assert "rejected the log search (400: Invalid query" in reason


def test_the_deadline_keeps_the_pages_read_and_marks_the_read_truncated(standin: DatadogLogsStandin) -> None:
    standin.logs = _logs(50)
    standin.delay_s, standin.slow_after = 3.0, 3
    source = _source(standin, page_size=10, deadline_s=1.5, timeout_s=1.0, retries=5)
    began = time.monotonic()

    events = list(source.events(*WINDOW))

    assert len(events) == 20
    assert time.monotonic() - began < 1.5 + 1.5
    assert source.account.truncated is not None and "ReadTimeoutError" in source.account.truncated


def test_the_engine_reports_a_cut_read_as_truncated_keeping_the_newest_logs(standin: DatadogLogsStandin) -> None:
    standin.logs = _logs(3600)
    source = _source(standin, max_events=500)

    events, degraded, reads = engine_read(source)

    assert events == 500
    (read,) = reads
    assert read["truncated"] == "reached max_events (500)"
    assert END - timedelta(minutes=10) <= datetime.fromisoformat(read["covered_from"]) < END
    assert any(d.component == "logs:datadog" and d.reason.startswith("truncated: reached max_events (500)") for d in degraded)


def test_an_empty_search_names_the_query_the_index_and_the_window(standin: DatadogLogsStandin) -> None:
    events, degraded, _ = engine_read(_source(standin, query="service:nothing-here", indexes=["main"]))

    assert events == 0
    assert any(
        d.component == "logs:datadog"
        and "found no events for Datadog logs 'service:nothing-here' in main at" in d.reason
        and "2026-03-10 11:00 to 12:00 UTC" in d.reason
        for d in degraded
    )


def test_a_second_read_of_the_same_window_comes_from_the_cache(standin: DatadogLogsStandin) -> None:
    standin.logs = _logs(25)
    assert len(list(_source(standin).events(*WINDOW))) == 25
    again = _source(standin)

    assert len(list(again.events(*WINDOW))) == 25
    assert len(standin.searches) == 1 and again.account.cached_slices == 1


def test_memory_stays_flat_with_the_number_of_logs_read(standin: DatadogLogsStandin) -> None:
    def peak_reading(count: int) -> int:
        standin.logs = _logs(count, every=timedelta(seconds=3600 / count))
        source = _source(standin, page_size=500, cache_ttl_s=0)
        tracemalloc.start()
        try:
            assert sum(1 for _ in source.events(*WINDOW)) == count
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_reading(500)  # the client's modules and caches, loaded once
    small, large = peak_reading(1000), peak_reading(8000)

    # Eight times the logs, the same pages in memory: only the stand-in's sorted list of references grows.
    assert large < small * 1.5 + 512 * 1024


def test_the_site_sets_the_api_root_and_the_page_size_is_capped_at_datadogs_limit(keys: DatadogLogsStandin) -> None:
    assert DatadogLogSource(DatadogLogsOptions(site="datadoghq.eu")).url == "https://api.datadoghq.eu"
    with pytest.raises(ValueError, match="less than or equal to 1000"):
        DatadogLogsOptions(page_size=5000)
