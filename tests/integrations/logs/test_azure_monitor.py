"""The `azure_monitor` kind through azure-monitor-query against a Log Analytics stand-in: pages in time, partial results, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from standin_log_analytics import LogAnalyticsStandin
from store_kit import engine_read, stored

from contracts import END, SECRET_DIR, START, WINDOW, Broken, LogRecord, LogStoreContract, MakeLogSource, Options
from integrations.logs import azure_monitor
from integrations.logs.azure_monitor import AzureMonitorOptions, AzureMonitorSource

QUERY = 'ContainerLogV2 | where ContainerName == "checkout"'


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> LogAnalyticsStandin:
    standin = LogAnalyticsStandin()
    monkeypatch.setenv("LA_TOKEN", standin.token)
    return standin


@pytest.fixture
def standin(token: LogAnalyticsStandin) -> Iterator[LogAnalyticsStandin]:
    token.start()
    yield token
    token.stop()


def _options(standin: LogAnalyticsStandin, **extra: Any) -> dict[str, Any]:
    return {
        "workspace_id": standin.workspace_id,
        "query": QUERY,
        "endpoint": standin.url,
        "message_column": "LogMessage",
        "level_column": "LogLevel",
        "token_env": "LA_TOKEN",
        **extra,
    }


def _source(standin: LogAnalyticsStandin, **extra: Any) -> AzureMonitorSource:
    return AzureMonitorSource(AzureMonitorOptions.model_validate(_options(standin, **extra)))


def _rows(count: int, *, every: timedelta = timedelta(seconds=1), container: str = "checkout") -> list[dict[str, Any]]:
    return [
        {
            "TimeGenerated": START + every * i,
            "LogMessage": f"payment failed for order {i}",
            "LogLevel": "error",
            "PodName": f"checkout-{i % 3}",
            "ContainerName": container,
            "Computer": "aks-node-1",
        }
        for i in range(count)
    ]


class TestAzureMonitorContract(LogStoreContract):
    kind = azure_monitor.KIND
    stamped_on_arrival = True

    @pytest.fixture
    def make_source(self, token: LogAnalyticsStandin) -> Iterator[MakeLogSource]:
        servers: list[LogAnalyticsStandin] = []

        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = LogAnalyticsStandin().start()
            servers.append(server)
            server.rows = [
                {"TimeGenerated": entry.at, "LogMessage": entry.line, "LogLevel": entry.level, "ContainerName": "checkout"}
                for entry in stored(records)
            ]
            if endless:
                server.rows += _rows(200_000, every=timedelta(milliseconds=10))
            return _options(server, page_size=3)

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture(params=["unreachable", "token refused"])
    def broken_source(self, request: pytest.FixtureRequest, standin: LogAnalyticsStandin, monkeypatch: pytest.MonkeyPatch) -> Broken:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:9/{SECRET_DIR}"
            return Broken(_options(standin, endpoint=url, deadline_s=2, retries=1), target=url)
        monkeypatch.setenv("LA_TOKEN", "expired")
        url = f"{standin.url}/{SECRET_DIR}"
        return Broken(_options(standin, endpoint=url), target=url)


def test_the_query_is_read_in_pages_following_each_other_in_time(standin: LogAnalyticsStandin) -> None:
    standin.rows = _rows(2500) + _rows(10, container="search")
    source = _source(standin, page_size=1000)

    events = list(source.events(*WINDOW))

    assert [e.ts for e in events] == [START + timedelta(seconds=i) for i in range(2500)]
    assert events[0].level == "error" and events[0].message == "payment failed for order 0"
    assert events[1].attributes["PodName"] == "checkout-1" and events[1].attributes["Computer"] == "aks-node-1"
    first, *later = standin.queries
    assert first.body["timespan"] == "2026-03-10T11:00:00.000Z/2026-03-10T12:00:00.001Z"
    assert first.body["query"].endswith(
        "| where TimeGenerated >= datetime(2026-03-10T11:00:00.000000Z)\n| order by TimeGenerated asc\n| take 1000"
    )
    assert "datetime(2026-03-10T11:16:39.000000Z)" in later[0].body["query"]
    assert first.prefer.startswith("wait=") and first.authorization == f"Bearer {standin.token}"
    assert len(standin.queries) == 3 and source.account.events == 2500


def test_rows_sharing_the_instant_a_page_ended_are_read_once(standin: LogAnalyticsStandin) -> None:
    standin.rows = _rows(30, every=timedelta(milliseconds=250))
    for index, row in enumerate(standin.rows):
        row["TimeGenerated"] = START + timedelta(seconds=index // 4)

    events = list(_source(standin, page_size=10).events(*WINDOW))

    assert sorted(e.message for e in events) == sorted(f"payment failed for order {i}" for i in range(30))


def test_a_partial_result_is_kept_and_marked(standin: LogAnalyticsStandin) -> None:
    standin.rows = _rows(50)
    standin.row_limit = 20
    source = _source(standin, page_size=100)

    events = list(source.events(*WINDOW))

    assert len(events) == 20
    assert source.account.partial == ["Azure Monitor returned a partial result: There were some errors when processing your query."]


def test_throttling_waits_for_retry_after_then_reads(standin: LogAnalyticsStandin) -> None:
    standin.rows = _rows(10)
    standin.throttle(times=1, retry_after_s=1)
    source = _source(standin)
    began = time.monotonic()

    assert len(list(source.events(*WINDOW))) == 10
    assert time.monotonic() - began >= 1.0
    assert len(standin.queries) == 2


def test_insufficient_access_becomes_one_degraded_entry_naming_the_role(standin: LogAnalyticsStandin) -> None:
    standin.denied = True

    events, degraded, _ = engine_read(_source(standin))

    assert events == 0
    (reason,) = {d.reason for d in degraded if d.component == "logs:azure_monitor" and "found no events" not in d.reason}
    assert "refused the credentials (403 The provided credentials have insufficient access" in reason
    assert "Log Analytics Reader" in reason


def test_kql_that_does_not_parse_is_one_clear_error(standin: LogAnalyticsStandin) -> None:
    with pytest.raises(azure_monitor.SourceError, match=r"rejected the query \(400 The request had some invalid properties"):
        list(_source(standin, query="ContainerLogV2 | summarize by").events(*WINDOW))


def test_the_deadline_keeps_the_pages_read_and_marks_the_read_truncated(standin: LogAnalyticsStandin) -> None:
    standin.rows = _rows(50)
    standin.delay_s, standin.slow_after = 3.0, 3
    source = _source(standin, page_size=10, deadline_s=1.5, timeout_s=1.0)
    began = time.monotonic()

    events = list(source.events(*WINDOW))

    # Two pages: the second starts at the first one's last row, asked again and left out.
    assert len(events) == 19
    assert time.monotonic() - began < 1.5 + 2.0
    assert source.account.truncated is not None


def test_the_engine_keeps_the_newest_part_of_a_capped_read(standin: LogAnalyticsStandin) -> None:
    standin.rows = _rows(1800, every=timedelta(seconds=2))

    events, _, reads = engine_read(_source(standin, max_events=300))

    assert events == 300 and reads[0]["truncated"] == "reached max_events (300)"
    assert END - timedelta(minutes=15) <= datetime.fromisoformat(reads[0]["covered_from"]) < END
