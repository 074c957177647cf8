"""The `cloud_logging` kind through google-cloud-logging (HTTP/JSON) against an `entries:list` stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from standin_cloud_logging import CloudEntry, CloudLoggingStandin
from store_kit import engine_read, stored

from contracts import END, SECRET_DIR, START, WINDOW, Broken, LogRecord, LogStoreContract, MakeLogSource, Options
from integrations.logs import cloud_logging
from integrations.logs.cloud_logging import CloudLoggingOptions, CloudLoggingSource

FILTER = 'resource.type="k8s_container" AND resource.labels.namespace_name="shop"'


@pytest.fixture
def standin() -> Iterator[CloudLoggingStandin]:
    server = CloudLoggingStandin().start()
    yield server
    server.stop()


def _options(url: str, **extra: Any) -> dict[str, Any]:
    return {"project": "shop-prod", "filter": FILTER, "endpoint_url": url, "anonymous": True, **extra}


def _source(standin: CloudLoggingStandin, **extra: Any) -> CloudLoggingSource:
    return CloudLoggingSource(CloudLoggingOptions.model_validate(_options(standin.url, **extra)))


def _entries(count: int, *, every: timedelta = timedelta(seconds=1)) -> list[CloudEntry]:
    return [
        CloudEntry(START + every * i, json_payload={"message": f"payment failed for order {i}", "order": i}, severity="ERROR")
        for i in range(count)
    ]


class TestCloudLoggingContract(LogStoreContract):
    kind = cloud_logging.KIND
    stamped_on_arrival = True

    @pytest.fixture
    def make_source(self) -> Iterator[MakeLogSource]:
        servers: list[CloudLoggingStandin] = []

        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = CloudLoggingStandin(endless=endless).start()
            servers.append(server)
            server.entries = [CloudEntry(entry.at, text=entry.line, severity="DEFAULT") for entry in stored(records)]
            return _options(server.url, page_size=3)

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture
    def broken_source(self, standin: CloudLoggingStandin) -> Broken:
        url = f"http://127.0.0.1:9/{SECRET_DIR}"
        return Broken(_options(url, deadline_s=2, retries=1), target=url)


def test_the_window_is_added_to_the_filter_and_read_across_pages(standin: CloudLoggingStandin) -> None:
    standin.entries = list(reversed(_entries(2500)))
    standin.entries.append(CloudEntry(START + timedelta(minutes=1), text="another namespace", resource_labels={"namespace_name": "ops"}))
    source = _source(standin)

    events = list(source.events(*WINDOW))

    assert [e.ts for e in events] == [START + timedelta(seconds=i) for i in range(2500)]
    assert events[0].level == "error" and events[0].message == "payment failed for order 0"
    assert events[0].pod == "checkout-7d9f" and events[0].attributes["namespace_name"] == "shop"
    first, *later = standin.requests
    assert first["filter"] == f'({FILTER}) AND timestamp>="2026-03-10T11:00:00.000000Z" AND timestamp<="2026-03-10T12:00:00.000000Z"'
    assert first["resourceNames"] == ["projects/shop-prod"] and first["orderBy"] == "timestamp asc" and first["pageSize"] == 1000
    assert len(later) == 2 and all(r.get("pageToken") for r in later)
    assert source.account.api_calls == 3 and source.account.events == 2500


def test_text_payloads_take_the_severity_and_request_fields_fill_the_event(standin: CloudLoggingStandin) -> None:
    standin.entries = [
        CloudEntry(
            START + timedelta(minutes=3),
            text="upstream connect error",
            severity="WARNING",
            trace="projects/shop-prod/traces/4bf92f3577b34da6",
            http_request={"requestMethod": "POST", "status": 503, "latency": "0.812s", "requestUrl": "/cart"},
        )
    ]

    (event,) = _source(standin).events(*WINDOW)

    assert (event.level, event.message) == ("warning", "upstream connect error")
    assert (event.status, event.method, event.duration_ms, event.trace_id) == (503, "POST", 812.0, "4bf92f3577b34da6")


def test_a_quota_answer_is_retried(standin: CloudLoggingStandin) -> None:
    standin.entries = _entries(30)
    source = _source(standin, page_size=10)
    standin.quota_exceeded(times=1)

    events = list(source.events(*WINDOW))

    assert [e.message for e in events] == [f"payment failed for order {i}" for i in range(30)]
    # The refused request, then three pages; the last page has no nextPageToken.
    assert source.account.truncated is None and len(standin.requests) == 4


def test_a_failure_mid_read_resumes_from_the_last_entry_without_repeating_it(standin: CloudLoggingStandin) -> None:
    # Ten entries a second: a resumed listing starts at the last time read and must skip what was read there.
    standin.entries = _entries(30, every=timedelta(milliseconds=100))
    source = _source(standin, page_size=12)
    stream = iter(source.events(*WINDOW))
    head = [next(stream) for _ in range(12)]
    standin.unavailable(times=1)

    rest = list(stream)

    assert [e.message for e in head + rest] == [f"payment failed for order {i}" for i in range(30)]
    assert 'timestamp>="2026-03-10T11:00:01.100000Z"' in standin.requests[-2]["filter"]


def test_permission_denied_becomes_one_degraded_entry_naming_the_role(standin: CloudLoggingStandin) -> None:
    standin.denied_projects.add("shop-prod")

    events, degraded, _ = engine_read(_source(standin))

    assert events == 0
    (reason,) = {d.reason for d in degraded if d.component == "logs:cloud_logging" and "found no events" not in d.reason}
    assert "refused the credentials (403 The caller does not have permission to read logs of project shop-prod)" in reason
    assert "roles/logging.viewer" in reason


def test_a_filter_that_does_not_parse_is_the_apis_own_message(standin: CloudLoggingStandin) -> None:
    with pytest.raises(cloud_logging.SourceError, match=r"rejected the listing \(400 Invalid filter: unexpected term"):
        list(_source(standin, filter="resource.type ~~ oops").events(*WINDOW))


def test_the_deadline_keeps_the_pages_read_and_marks_the_read_truncated(standin: CloudLoggingStandin) -> None:
    standin.entries = _entries(50)
    standin.delay_s, standin.slow_after = 3.0, 3
    source = _source(standin, page_size=10, deadline_s=1.5, timeout_s=1.0)
    began = time.monotonic()

    events = list(source.events(*WINDOW))

    assert len(events) == 20
    assert time.monotonic() - began < 1.5 + 2.0
    assert source.account.truncated is not None


def test_the_engine_keeps_the_newest_part_of_a_capped_read(standin: CloudLoggingStandin) -> None:
    standin.entries = _entries(1800, every=timedelta(seconds=2))

    events, _, reads = engine_read(_source(standin, max_events=300))

    assert events == 300 and reads[0]["truncated"] == "reached max_events (300)"
    assert END - timedelta(minutes=15) <= datetime.fromisoformat(reads[0]["covered_from"]) < END
