"""What the object-store log kinds (`s3`, `gcs`) share: dated prefixes, and an object's lines as records of the window.

Shippers (Fluent Bit, Vector, Firehose, log sinks) write a service's logs as objects,
plain or gzip, under a prefix that usually names the day, e.g. `logs/{date:%Y/%m/%d}/`.
`prefixes` fills such a template for each UTC day (or hour, when it names the hour) the
window touches, so only those objects are listed. An object is streamed line by line
and never held whole; its lines are grouped into events as a file's would be (a stack
trace stays with the line that announced it), and events outside the window are dropped
by their own time before they are counted.

The base reads a store slice by slice; an object whose first event comes well after a
slice, or that was last written well before it, holds nothing of that slice and is
left after its first line, or not opened at all.
"""

from __future__ import annotations

import gzip
import io
import string
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.errors import SourceError
from integrations.logs.file_lines import GZIP_MAGIC, bounded_lines
from integrations.logs.parsing import parse_stream
from integrations.logs.parsing.stacks import looks_like_continuation
from integrations.logs.store import Record

# How far a line's time may be from its object's write time, or out of order in its object (clocks, shipper buffers).
SKEW = timedelta(minutes=15)
# A record holds this many events at most: big enough to keep calls to the parser few, small enough to stream.
EVENTS_PER_RECORD = 200
_HOURLY = ("%H", "%I", "%p")
# Prefixes are filled hour by hour at the finest: a template naming minutes or seconds would miss most objects.
_FINER = ("%M", "%S", "%f", "%s", "%c", "%X", "%T", "%R")


def check_template(prefix: str) -> str:
    """The prefix when it is plain text or a template using only `{date:<strftime>}`; ValueError naming the problem."""
    for _text, field, spec, _conversion in string.Formatter().parse(prefix):
        if field is None:
            continue
        if field != "date":
            raise ValueError(f"prefix may only use {{date:...}} (a strftime format such as {{date:%Y/%m/%d}}), not {{{field}}}")
        if not spec:
            raise ValueError("{date} needs a strftime format, e.g. {date:%Y/%m/%d}")
        if any(code in spec for code in _FINER):
            raise ValueError("{date:...} may name the day or the hour, not minutes or seconds: end the prefix at the hour")
    return prefix


def prefixes(template: str, start: datetime, end: datetime) -> list[str]:
    """The template filled for each UTC day, or each hour when it names one, of [start, end]; each prefix once, oldest first."""
    if "{" not in template:
        return [template]
    step = timedelta(hours=1) if any(code in template for code in _HOURLY) else timedelta(days=1)
    moment = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if step == timedelta(days=1):
        moment = moment.replace(hour=0)
    filled: dict[str, None] = {}
    while moment <= end:
        filled[template.format(date=moment)] = None
        moment += step
    return list(filled)


class _Raw(io.RawIOBase):
    """Anything with `read(n)` (a boto3 body, a GCS reader) as a raw stream, so that it can be buffered and peeked.

    Past the end it answers without asking `body` again: a GCS reader makes a request
    for every read, even at the end. `size`, when known, ends the stream without that request.
    """

    def __init__(self, body: Any, size: int | None) -> None:
        self.body = body
        self.left = size
        self.ended = size == 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.ended:
            return 0
        wanted = len(buffer) if self.left is None else min(len(buffer), self.left)
        data = self.body.read(wanted)
        buffer[: len(data)] = data
        if self.left is not None:
            self.left -= len(data)
        self.ended = not data or self.left == 0
        return len(data)


def object_lines(body: Any, size: int | None = None) -> Iterator[str]:
    """The lines of an object's body, gzip (told by its first bytes, whatever the key or content type say) or plain."""
    handle = io.BufferedReader(_Raw(body, size), buffer_size=256 * 1024)
    stream: io.BufferedIOBase = gzip.GzipFile(fileobj=handle) if handle.peek(2)[:2] == GZIP_MAGIC else handle
    try:
        yield from bounded_lines(stream.readline)
    except EOFError:
        # A gzip object cut short (a shipper still writing it) gives what it holds.
        return
    except zlib.error as exc:
        raise SourceError(f"the object is not valid gzip ({exc})") from None


def line_time(line: str) -> datetime | None:
    """The time a line states, if it starts an event that has one."""
    if not line or line[0].isspace() or looks_like_continuation(line):
        return None
    event = next(parse_stream([line], ""), None)
    return event.ts if event is not None else None


def object_records(lines: Iterable[str], start: datetime, end: datetime, labels: dict[str, str], written: datetime) -> Iterator[Record]:
    """An object's events in [start, end] as records of up to EVENTS_PER_RECORD events, each record in time order.

    An event is a line with a time and the lines after it that have none (a stack trace,
    a wrapped message); lines before the first time take the object's first time, or
    its write time when no line has one. Reading stops when the first event comes
    more than SKEW after `end`: the object was begun after the range.
    """
    events: list[tuple[datetime, list[str]]] = []
    current: list[str] = []
    current_at: datetime | None = None
    for line in lines:
        at = line_time(line)
        if at is None:
            current.append(line)
            continue
        if current_at is None:
            if at > end + SKEW:
                return
            # Lines before the first time go with the first event.
            current.append(line)
            current_at = at
            continue
        if start <= current_at <= end:
            events.append((current_at, current))
            if len(events) >= EVENTS_PER_RECORD:
                yield _record(events, labels)
                events = []
        current, current_at = [line], at
    if current and current_at is None:
        current_at = written
    if current_at is not None and start <= current_at <= end:
        events.append((current_at, current))
    if events:
        yield _record(events, labels)


def _record(events: list[tuple[datetime, list[str]]], labels: dict[str, str]) -> Record:
    events.sort(key=lambda event: event[0])
    return Record(events[0][0], "\n".join(line for _, lines in events for line in lines), dict(labels))


def paged(records: Iterator[Record], size: int = 5) -> Iterator[list[Record]]:
    """Records in pages of a few (each record already holds up to EVENTS_PER_RECORD events)."""
    page: list[Record] = []
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def stream_object(
    opened: Callable[[], Any],
    start: datetime,
    end: datetime,
    labels: dict[str, str],
    written: datetime,
    broke: Callable[[Exception], SourceError],
    size: int | None = None,
) -> Iterator[list[Record]]:
    """One object's records in pages; a read that breaks off midway raises `broke(exc)`."""
    body = opened()
    try:
        yield from paged(object_records(object_lines(body, size), start, end, labels, written))
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001  (a body read fails in the client's own exception types: each becomes a SourceError)
        raise broke(exc) from None
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
