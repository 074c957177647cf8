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
    """

    ts: datetime | None
    level: str
    message: str
    raw: str
    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)
    exception: str | None = None


LEVELS = ("trace", "debug", "info", "notice", "warning", "error", "critical")


class LogSource(Protocol):
    """A place that holds log events for a service."""

    name: str

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        """Yield events whose time falls in [start, end] (and events without a time), streaming."""
        ...
