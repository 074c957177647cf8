"""What the tests of hosted log stores share: the contract's records as a store holds them, and reads through the engine.

A store stamps every entry when it arrives and searches by that stamp; the line keeps
the time it was written with. `stored` gives each record of a contract dataset the
stamp the store would give it (arrival order: never earlier than what came before) and
the line as the service wrote it (JSON with time, level and message), so a record
written late but stamped earlier keeps the store's order and its own time.

`TimeIndexedStore` is mixed into a hosted kind's contract class: the three contract
tests about events without a time fail, as strict xfails, for every store that stamps
each entry — the store's stamp is the event's time when the line has none. They pass
again the day the contract or the base distinguishes a store's stamp from a line's time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from contracts import (
    END,
    FIRST_EVENT_WITHIN_S,
    LOG_RECORDS,
    START,
    T0,
    WINDOW,
    LogRecord,
    LogSourceContract,
    MakeLogSource,
    build,
    first_within,
)
from core.alert import Alert
from core.degraded import Degradation
from integrations.logs.base import LogEvent
from integrations.registry import ServiceSources
from integrations.roles import LOGS

TIMELESS = (
    "a hosted store stamps every entry on arrival, so an entry whose line has no time takes the store's stamp"
    " and is searched by it: no event comes back without a time (integrations/logs/store.py _to_events)"
)

TIMED = tuple(r for r in LOG_RECORDS if r.ts is not None)
TIMED_IN_WINDOW = tuple(r for r in TIMED if r.ts is not None and START <= r.ts <= END)


@dataclass(frozen=True)
class Stored:
    """One entry as the store holds it: the stamp it searches by, the line as written, and the level the store keeps apart."""

    at: datetime
    line: str
    level: str


def json_line(record: LogRecord) -> str:
    entry: dict[str, Any] = {"level": record.level, "msg": record.message}
    if record.ts is not None:
        entry = {"time": record.ts.isoformat(), **entry}
    return json.dumps(entry)


def stored(records: Sequence[LogRecord]) -> list[Stored]:
    known = [r.ts for r in records if r.ts is not None]
    arrived = min(known) if known else START
    entries = []
    for record in records:
        if record.ts is not None:
            arrived = max(arrived, record.ts)
        entries.append(Stored(arrived, json_line(record), record.level))
    return entries


def engine_read(source: Any) -> tuple[int, list[Degradation], list[dict[str, Any]]]:
    """A source read by the evidence engine over [START, END]: events read, degraded entries, read accounts."""
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="svc", created_at=END),
        service="svc",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [source]}),
    )
    degraded: list[Degradation] = []
    reads: list[dict[str, Any]] = []
    stats = read_logs(inputs, lambda *_: None, degraded, reads)
    return stats.events, degraded, reads


class TimeIndexedStore:
    """Mixed in before `LogSourceContract`: its tests about events without a time, as strict xfails (see TIMELESS)."""

    @pytest.mark.xfail(strict=True, raises=AssertionError, reason=TIMELESS)
    def test_events_in_the_window_and_events_without_a_time_are_kept_in_the_source_order(
        self, make_source: MakeLogSource, tmp_path: Path
    ) -> None:
        LogSourceContract.test_events_in_the_window_and_events_without_a_time_are_kept_in_the_source_order(
            self,  # type: ignore[arg-type]
            make_source,
            tmp_path,
        )

    @pytest.mark.xfail(strict=True, raises=AssertionError, reason=TIMELESS)
    def test_a_window_that_holds_nothing_gives_only_the_events_without_a_time(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        LogSourceContract.test_a_window_that_holds_nothing_gives_only_the_events_without_a_time(
            self,  # type: ignore[arg-type]
            make_source,
            tmp_path,
        )

    @pytest.mark.xfail(strict=True, raises=AssertionError, reason=TIMELESS)
    def test_events_stream_so_the_first_arrives_without_reading_everything(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        LogSourceContract.test_events_stream_so_the_first_arrives_without_reading_everything(
            self,  # type: ignore[arg-type]
            make_source,
            tmp_path,
        )

    # What a store does instead: the same checks on the records that carry a time.

    def test_timed_events_in_the_window_come_in_the_store_order_with_their_own_times(
        self, make_source: MakeLogSource, tmp_path: Path
    ) -> None:
        source = build(self.kind, make_source(TIMED), tmp_path)  # type: ignore[attr-defined]

        events = list(source.events(*WINDOW))

        assert [(e.ts, e.level, e.message) for e in events] == [(r.ts, r.level, r.message) for r in TIMED_IN_WINDOW]
        assert all(isinstance(e.source, str) and e.source for e in events)

    def test_a_window_that_holds_nothing_gives_nothing_and_says_so(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        source = build(self.kind, make_source(TIMED), tmp_path)  # type: ignore[attr-defined]

        assert list(source.events(T0 - timedelta(days=30), T0 - timedelta(days=29))) == []
        assert source.account.empty and source.account.query

    def test_the_first_timed_event_arrives_without_reading_everything(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        source = build(self.kind, make_source(TIMED, endless=True), tmp_path)  # type: ignore[attr-defined]

        first: LogEvent = first_within(lambda: iter(source.events(*WINDOW)), FIRST_EVENT_WITHIN_S)

        assert first.message == TIMED_IN_WINDOW[0].message
