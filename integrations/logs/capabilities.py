"""Abilities a log source may declare beyond `LogSource`, as Protocols: the engine asks for the ability, never the type."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from integrations.logs.base import LogEvent, LogSource

if TYPE_CHECKING:
    from integrations.logs.store import ReadAccount


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


@runtime_checkable
class SlicedLogSource(LogSource, Protocol):
    """A log store read slice by slice, newest first, so that a read cut by a cap or the deadline keeps the newest part.

    `slices` starts a read of [start, end] and returns its ranges, newest first;
    `read_slice` yields one range's events in time order; once `exhausted`, later
    slices would read nothing. `account` says what the read covered, for the report.
    """

    def slices(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]: ...

    def read_slice(self, start: datetime, end: datetime) -> Iterator[LogEvent]: ...

    @property
    def exhausted(self) -> bool: ...

    @property
    def account(self) -> ReadAccount: ...
