"""The log-store base every remote log kind shares: caps that keep the newest part, retries, the cache, the read account.

`ListStore` serves records from a list through the base's real paths; the kinds'
own tests run their clients against real servers and stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from core.alert import Alert
from core.degraded import Degradation
from integrations.errors import SourceError
from integrations.logs.capabilities import SlicedLogSource
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.registry import ServiceSources
from integrations.remote_calls import RetryableError
from integrations.roles import LOGS

START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class ListOptions(StoreOptions):
    target: str = "memory"


class ListStore(LogStore):
    """Records from a list, `page_size` per call; `faults` are raised by the calls they are keyed by (1-based)."""

    kind = "list"

    def __init__(
        self, records: list[Record], options: ListOptions | None = None, *, page_size: int = 10, faults: dict[int, Exception] | None = None
    ) -> None:
        self.records = records
        self.page_size = page_size
        self.faults = dict(faults or {})
        self.calls = 0
        super().__init__(options or ListOptions())

    def describe(self) -> str:
        return "every line in memory"

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        chosen = [r for r in self.records if r.ts is not None and start <= r.ts <= end]
        for offset in range(0, len(chosen), self.page_size):
            yield session.call(lambda offset=offset: self._page(chosen, offset), what="list page")  # type: ignore[misc]

    def _page(self, chosen: list[Record], offset: int) -> list[Record]:
        self.calls += 1
        fault = self.faults.pop(self.calls, None)
        if fault is not None:
            raise fault
        return chosen[offset : offset + self.page_size]


def _records(count: int, *, every: timedelta = timedelta(seconds=10)) -> list[Record]:
    return [
        Record(START + every * i, f"2026-03-10T{(START + every * i):%H:%M:%S}Z ERROR payment failed order={i}", {"pod": f"api-{i % 3}"})
        for i in range(count)
    ]


def _engine_read(store: LogStore) -> tuple[int, list[Degradation], list[dict[str, Any]]]:
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="shop", created_at=END),
        service="shop",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [store]}),
    )
    degraded: list[Degradation] = []
    reads: list[dict[str, Any]] = []
    stats = read_logs(inputs, lambda *_: None, degraded, reads)
    return stats.events, degraded, reads


def test_records_become_events_with_the_file_parser_and_the_store_fields() -> None:
    store = ListStore(_records(25))
    events = list(store.events(START, END))
    assert len(events) == 25
    assert [e.ts for e in events] == sorted(e.ts for e in events if e.ts is not None)
    assert events[0].level == "error" and events[0].message.startswith("payment failed")
    assert events[4].pod == "api-1"
    assert store.account.api_calls == 3 and store.account.events == 25 and store.account.truncated is None


def test_a_record_without_its_own_time_takes_the_stores_time() -> None:
    store = ListStore([Record(START + timedelta(minutes=5), "panic: nil map", {"kubernetes.pod_name": "api-7"})])
    (event,) = store.events(START, END)
    assert event.ts == START + timedelta(minutes=5)
    assert event.pod == "api-7"


def test_a_capped_read_keeps_the_newest_part_of_the_window_and_says_so() -> None:
    store = ListStore(_records(360), ListOptions(max_events=100))
    assert isinstance(store, SlicedLogSource)
    events, degraded, reads = _engine_read(store)
    assert events == 100
    (read,) = reads
    assert read["events"] == 100 and read["truncated"] == "reached max_events (100)"
    # The newest 100 events lie in the last ~17 minutes: the read covered the last slices whole.
    covered_from = datetime.fromisoformat(read["covered_from"])
    assert END - timedelta(minutes=20) <= covered_from < END
    (entry,) = [d for d in degraded if d.component == "logs:list"]
    assert entry.reason.startswith("truncated: reached max_events (100); kept 100 events")


def test_the_parts_merge_in_time_order_whatever_order_they_were_read() -> None:
    whole, _, _ = _engine_read(ListStore(_records(360)))
    assert whole == 360


def test_an_empty_read_says_what_found_nothing() -> None:
    events, degraded, reads = _engine_read(ListStore([]))
    assert events == 0 and reads[0]["events"] == 0
    assert Degradation("logs:list", "found no events for every line in memory in 2026-03-10 11:00 to 12:00 UTC") in degraded


def test_throttling_is_retried_and_counted() -> None:
    store = ListStore(_records(25), faults={2: RetryableError("429 Too Many Requests", wait_s=0.01)})
    assert len(list(store.events(START, END))) == 25
    assert store.account.api_calls == 4


def test_a_permanent_error_before_any_event_raises_for_the_degraded_entry() -> None:
    store = ListStore(_records(25), faults={1: SourceError("403: the token may not read this log group")})
    with pytest.raises(SourceError, match="list page: 403"):
        list(store.events(START, END))


def test_a_permanent_error_in_the_engine_is_one_degraded_entry_not_one_per_slice() -> None:
    store = ListStore(_records(25), faults={1: SourceError("403: the token may not read this log group")})
    events, degraded, reads = _engine_read(store)
    assert events == 0 and store.calls == 1
    assert [d.reason for d in degraded if d.component == "logs:list"] == [
        "SourceError: list page: 403: the token may not read this log group"
    ]
    assert reads[0]["failed"] == "list page: 403: the token may not read this log group"


def test_an_error_after_some_pages_keeps_them_and_marks_the_read_truncated() -> None:
    store = ListStore(_records(25), faults={3: SourceError("500 three times")})
    assert len(list(store.events(START, END))) == 20
    assert store.account.truncated == "list page: 500 three times"


def test_the_deadline_ends_the_read_with_what_was_read() -> None:
    slow = ListStore(
        _records(25),
        ListOptions(deadline_s=0.2, retries=10),
        faults={
            2: RetryableError("503", wait_s=0.05),
            3: RetryableError("503", wait_s=0.05),
            4: RetryableError("503", wait_s=0.05),
            5: RetryableError("503", wait_s=0.5),
        },
    )
    events = list(slow.events(START, END))
    assert len(events) == 10
    assert slow.account.truncated is not None and "503" in slow.account.truncated


def test_a_second_read_of_the_same_window_comes_from_the_cache(tmp_path: Path) -> None:
    records = _records(25)
    first = ListStore(records)
    assert len(list(first.events(START, END))) == 25
    again = ListStore(records)
    assert [e.raw for e in again.events(START, END)] == [e.raw for e in first.events(START, END)]
    assert again.calls == 0 and again.account.cached_slices == 1 and again.account.api_calls == 0


def test_the_cache_is_off_with_a_zero_ttl_and_never_keeps_a_cut_read() -> None:
    records = _records(25)
    list(ListStore(records, ListOptions(cache_ttl_s=0)).events(START, END))
    after_uncached = ListStore(records)
    assert len(list(after_uncached.events(START, END))) == 25
    assert after_uncached.calls == 3 and after_uncached.account.cached_slices == 0
    cut = ListStore(records, ListOptions(max_events=5))
    assert len(list(cut.events(START, END))) == 5
    fresh = ListStore(records, ListOptions(target="elsewhere"))
    list(ListStore(records, ListOptions(target="elsewhere", max_events=5)).events(START, END))
    assert len(list(fresh.events(START, END))) == 25
    assert fresh.calls == 3


def test_a_permanent_error_is_one_degraded_entry_not_one_per_slice() -> None:
    store = ListStore(_records(360), faults={1: SourceError("403: the token may not read this log group")})
    events, degraded, _ = _engine_read(store)
    assert events == 0 and store.calls == 1
    assert [d.reason for d in degraded if "403" in d.reason] == ["SourceError: list page: 403: the token may not read this log group"]
