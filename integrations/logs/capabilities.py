"""Abilities a log source may declare beyond `LogSource`, as Protocols: the engine asks for the ability, never the type."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol, runtime_checkable

from integrations.logs.base import LogEvent, LogSource


class LogUnit(Protocol):
    """A piece of a source that can be read apart from the others, in another process: it must pickle."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int:
        """How much reading it takes, in the unit its source's `volume` uses; the largest go first."""
        ...

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        """The unit's events in [start, end] and those without a time, as its source would yield them."""
        ...


@runtime_checkable
class SplittableLogSource(LogSource, Protocol):
    """A log source whose window can be cut into units read in parallel worker processes.

    Reading `units(target)` one after the other yields the events of `events()`, in
    order. Both calls may block on I/O (a stale mount, a slow store): callers
    bound them with the log deadline.
    """

    def volume(self) -> int:
        """How much a full read covers (bytes for files); the engine splits only when it pays."""
        ...

    def units(self, target: int) -> list[LogUnit]:
        """The source as units of about `target` each."""
        ...
