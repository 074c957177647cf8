"""Physical lines in, logical events out: each line goes to its format, continuation lines fold into their event.

Multi-line events (Java stack traces, Python tracebacks, Go panics, PostgreSQL
DETAIL lines) are folded into the event they continue, per pod when lines carry a
`[pod/<name>/<container>]` prefix, because several pods' output is often interleaved
in one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from integrations.logs.base import LogEvent
from integrations.logs.parsing.events import FOLD, MAX_FOLDED_LINES, MAX_LINE, MAX_MESSAGE, MAX_OPEN_EVENTS, MAX_RAW, clip, new_event
from integrations.logs.parsing.formats import FALLBACKS, FALLBACKS_OTHER, SPECIFIC, SPECIFIC_OTHER, Format
from integrations.logs.parsing.stacks import EXCEPTION_LINE, StackReader, looks_like_continuation
from integrations.logs.parsing.times import ERRORISH, sniff_level


class _Fold:
    """The lines folded into an open event so far, and what they say about the stack."""

    __slots__ = ("dropped", "lines", "size", "stack")

    def __init__(self, head: str) -> None:
        self.lines = [head]
        self.size = len(head)
        self.dropped = 0
        self.stack = StackReader()

    def add(self, line: str) -> None:
        self.stack.feed(line)
        if len(self.lines) >= MAX_FOLDED_LINES or self.size >= MAX_RAW:
            self.dropped += 1
            return
        line = clip(line, MAX_RAW - self.size - 1)
        self.lines.append(line)
        self.size += len(line) + 1


_Open = tuple[LogEvent, bool, "_Fold | None"]


class _Folder:
    """Turns physical lines into events, holding each pod's latest event open for continuation lines."""

    def __init__(self, source: str) -> None:
        self.source = source
        # Lines of one file mostly share a format: the last one that matched is tried first.
        self.last_format: Format | None = None
        self.last_ts: datetime | None = None
        # Per pod key: the open event, whether free text may run on under it, and its folded lines.
        self.open: dict[str | None, _Open] = {}
        self.ready: list[LogEvent] = []

    def push(self, line: str) -> LogEvent | None:
        """Take one physical line; return the event it closes, if any."""
        line = _clean(line)
        key: str | None = None
        pod: dict[str, str] | None = None
        if line.startswith("[pod/"):
            key, pod, line = _strip_pod(line)
        if not line or line.isspace():
            return None
        if line[0] in " \t":
            return self._continue(key, line, pod)
        parsed = self._parse(line)
        if parsed is None:
            return self._unparsed(key, line, pod)
        fmt, event = parsed
        if event is FOLD:
            return self._continue(key, line, pod)
        if pod is not None:
            event.attributes.update(pod)
            event.pod = pod["pod"]
        if event.ts is not None:
            self.last_ts = event.ts
        return self._open(key, event, fmt.free_text)

    def close(self) -> Iterator[LogEvent]:
        yield from self.ready
        self.ready.clear()
        for state in self.open.values():
            yield _finish(state)
        self.open.clear()

    def _parse(self, line: str) -> tuple[Format, LogEvent] | None:
        last = self.last_format
        if last is not None and (event := last.parse(line, self.source)) is not None:
            return last, event
        first = line[0]
        for fmt in SPECIFIC.get(first, SPECIFIC_OTHER):
            if (event := fmt.parse(line, self.source)) is not None:
                self.last_format = fmt
                return fmt, event
        for fmt in FALLBACKS.get(first, FALLBACKS_OTHER):
            if (event := fmt.parse(line, self.source)) is not None:
                return fmt, event
        return None

    def _unparsed(self, key: str | None, line: str, pod: dict[str, str] | None) -> LogEvent | None:
        """A line without a recognisable prefix: a continuation, or an event of its own without a time."""
        state = self.open.get(key)
        if state is not None and _continues(state, line):
            return self._continue(key, line, pod)
        head = state[0] if state is not None else None
        attributes: dict[str, Any] = dict(pod) if pod else {}
        if line.startswith(("panic: ", "fatal error: ")):
            # A Go panic is printed after the last log line, so that line's time is the best estimate.
            event = new_event(self._recent_ts(head), "critical", line, line, self.source, {**attributes, "ts_inferred": True})
        elif line.startswith("Traceback (most recent call last)"):
            # The message becomes the exception line once the traceback ends.
            event = new_event(self._recent_ts(head), "error", "", line, self.source, {**attributes, "ts_inferred": True})
        elif EXCEPTION_LINE.match(line[:300]) is not None:
            event = new_event(None, "error", line, line, self.source, attributes)
        else:
            return self._open(key, new_event(None, sniff_level(line), line, line, self.source, attributes), False)
        # An event that is itself a stack trace's first line reads that line for the exception.
        closed = self._open(key, event, False)
        self._continue(key, line, pod, store=False)
        return closed

    def _recent_ts(self, head: LogEvent | None) -> datetime | None:
        return head.ts if head is not None and head.ts is not None else self.last_ts

    def _open(self, key: str | None, event: LogEvent, free_text: bool) -> LogEvent | None:
        previous = self.open.pop(key, None)
        self.open[key] = (event, free_text, None)
        if len(self.open) > MAX_OPEN_EVENTS:
            self.ready.append(_finish(self.open.pop(next(iter(self.open)))))
        if previous is None:
            return None
        return previous[0] if previous[2] is None else _finish(previous)

    def _continue(self, key: str | None, line: str, pod: dict[str, str] | None, *, store: bool = True) -> LogEvent | None:
        state = self.open.get(key)
        if state is None:
            attributes: dict[str, Any] = dict(pod) if pod else {}
            return self._open(key, new_event(None, sniff_level(line), line.strip(), line, self.source, attributes), False)
        event, free_text, fold = state
        if fold is None:
            fold = _Fold(event.raw)
            self.open[key] = (event, free_text, fold)
        if store:
            fold.add(line)
        else:
            fold.stack.feed(line)
        return None


def _continues(state: _Open, line: str) -> bool:
    head, free_text, fold = state
    if line.startswith(("panic: ", "fatal error: ")):
        return False
    if line.startswith("Traceback (most recent call last)"):
        # A traceback belongs to the error line that announced it, not to an unrelated info line.
        return head.level in ERRORISH and (fold is None or fold.stack.exception is None or fold.stack.chained)
    return free_text or (fold is not None and fold.stack.started()) or looks_like_continuation(line)


def _finish(state: _Open) -> LogEvent:
    event, _free_text, fold = state
    if fold is None:
        return event
    if len(fold.lines) > 1:
        event.raw = "\n".join(fold.lines)
    if fold.dropped:
        event.attributes["folded_lines_dropped"] = fold.dropped
    stack = fold.stack
    if stack.frames:
        event.frames = stack.frames
    exception = stack.exception_text()
    if exception:
        event.exception = clip(exception, MAX_MESSAGE)
        if event.exception not in event.message:
            joined = f"{event.message}: {event.exception}" if event.message else event.exception
            event.message = clip(joined, MAX_MESSAGE)
    elif not event.message:
        event.message = fold.lines[0]
    return event


def _clean(line: str) -> str:
    line = line.rstrip("\r\n")
    if len(line) > MAX_LINE:
        line = line[:MAX_LINE]
    if "\x00" in line:
        # PostgreSQL text cannot hold NUL, and NUL carries no meaning in a log line.
        line = line.replace("\x00", "")
    if line.startswith("\ufeff"):
        line = line.lstrip("\ufeff")
    return line


def _strip_pod(line: str) -> tuple[str | None, dict[str, str] | None, str]:
    """`[pod/<name>/<container>] rest` → (key, pod fields, rest); a malformed prefix stays in the line."""
    end = line.find("]", 5, 300)
    if end < 0:
        return None, None, line
    key = line[5:end]
    name, _, container = key.partition("/")
    rest = line[end + 1 :]
    fields = {"pod": name, "container": container} if container else {"pod": name}
    return key, fields, rest[1:] if rest.startswith(" ") else rest


def parse_stream(lines: Iterable[str], source: str) -> Iterator[LogEvent]:
    """Yield the logical events in `lines` (physical lines, newlines optional), folding multi-line ones.

    Events come out when the next line of the same pod (or the end) closes them, so
    with interleaved pods the order follows the closing lines rather than the first.
    """
    folder = _Folder(source)
    for line in lines:
        event = folder.push(line)
        if event is not None:
            yield event
        if folder.ready:
            yield from folder.ready
            folder.ready.clear()
    yield from folder.close()
