"""The log role: what a log store gives an investigation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame named by an error: where the code was when it failed."""

    file: str
    function: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{self.function} ({where})" if self.function else where


@dataclass(slots=True)
class LogEvent:
    """One logical log event: a single line, or a multi-line event (stack trace) folded into one.

    `message` is the human message (the `msg` of a JSON line, the text after the
    level and logger of a plain line) plus the first exception line when there is one;
    `raw` is everything the event carried, folded lines included.

    The typed fields below `exception` are the contract between log sources and the
    analysis: each is None (or empty) unless the event states it. `attributes` keeps the
    event's structured keys as its source spelled them (beyond time, level and message),
    those the typed fields were read from included; the analysis reads only the typed fields.
    """

    ts: datetime | None
    level: str
    message: str
    raw: str
    source: str
    attributes: dict[str, Any] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)
    exception: str | None = None
    # The class or kind of the error (`TypeError`, `ECONNREFUSED`) and what the event says went wrong.
    error_type: str | None = None
    error_text: str | None = None
    # The HTTP status and duration of the request the event reports.
    status: int | None = None
    duration_ms: float | None = None
    method: str | None = None
    # Where the event was written: pod, host (machine or container host name), service.
    pod: str | None = None
    host: str | None = None
    service: str | None = None
    trace_id: str | None = None
    # The build the process reports (start-up lines name it), and other services the event names.
    version: str | None = None
    peers: tuple[str, ...] = ()


LEVELS = ("trace", "debug", "info", "notice", "warning", "error", "critical")


class LogSource(Protocol):
    """A place that holds log events for a service."""

    name: str

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        """Yield events whose time falls in [start, end] (and events without a time), streaming."""
        ...
