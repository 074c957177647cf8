"""The investigation window applied to a stream of events, the same way for every log source."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from core.timeparse import as_utc
from integrations.logs.base import LogEvent


def in_window(events: Iterable[LogEvent], start: datetime, end: datetime) -> Iterator[LogEvent]:
    """Events whose time falls in [start, end], and events without a time: dropping those would hide crash output."""
    start, end = as_utc(start), as_utc(end)
    for event in events:
        if event.ts is None or start <= event.ts <= end:
            yield event
