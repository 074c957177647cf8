"""One part of the pass over the log events: `LogPart` aggregates a reading unit's events per message shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agents.evidence.log_events import deploy_marker, is_access, origin, signature_text
from agents.evidence.templates import TemplateMiner, mask
from integrations.logs.base import LogEvent

MAX_SAMPLES = 3
MAX_SAMPLE_CHARS = 4000
MAX_NAMES_PER_GROUP = 40
# Start-up lines are rare; a template seen this often is request traffic, not a build announcing itself.
MAX_MARKERS_PER_GROUP = 500

# What a part remembers of an event's names and pods, and of a start-up line naming a build:
# (position, names, service, pod, ts) and (position, version, sha, service, pod, ts).
NameNote = tuple[int, tuple[str, ...], str | None, str | None, float | None]
MarkerNote = tuple[int, str, str | None, str, str, float]
# Beyond this many shapes in one part (free text that masking cannot tame), new shapes are
# grouped by a part-local miner instead, so that a part's memory stays bounded.
MAX_SHAPES = 5_000
_KEY_CACHE = 100_000
_CACHED_KEY_LEN = 512
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
# Positions of later parts are offset by this much: a part holds fewer than 2**40 events.
PART_BITS = 40
NEVER = 1 << 80


@dataclass(slots=True)
class MinuteTotals:
    events: int = 0
    errors: int = 0
    warnings: int = 0
    server_errors: int = 0
    latency_sum_ms: float = 0.0
    latency_n: int = 0


@dataclass(slots=True)
class Shape:
    """The events of one message shape (one masked text) in a part, or of one group once parts merge.

    The group an event joins depends on the messages mined before it, so parts read in other
    processes are keyed by shape, and the merge mines each shape's first text in the order a
    single pass would have met it. Whatever depends on which events came first (samples,
    names of the first events, start-up lines) carries the event's position for the merge.
    """

    text: str
    first: int
    http: bool
    count: int = 0
    untimed: int = 0
    server_errors: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    minutes: dict[int, int] = field(default_factory=dict)
    first_in_minute: dict[int, float] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    level_first: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    source_first: dict[str, int] = field(default_factory=dict)
    # Positions of the first MAX_MARKERS_PER_GROUP events, ascending.
    positions: list[int] = field(default_factory=list)
    samples: list[tuple[int, str, str]] = field(default_factory=list)
    frames: tuple[int, list[str], list[str], list[str]] | None = None
    exception: tuple[int, str] | None = None
    names: list[NameNote] = field(default_factory=list)
    markers: list[MarkerNote] = field(default_factory=list)

    def absorb(self, other: Shape, offset: int) -> None:
        """Fold in `other`, whose positions are moved by `offset`."""
        self.count += other.count
        self.untimed += other.untimed
        self.server_errors += other.server_errors
        minutes = self.minutes
        for minute, n in other.minutes.items():
            minutes[minute] = minutes.get(minute, 0) + n
        firsts = self.first_in_minute
        for minute, ts in other.first_in_minute.items():
            if (known := firsts.get(minute)) is None or ts < known:
                firsts[minute] = ts
        if other.first_ts is not None and (self.first_ts is None or other.first_ts < self.first_ts):
            self.first_ts = other.first_ts
        if other.last_ts is not None and (self.last_ts is None or other.last_ts > self.last_ts):
            self.last_ts = other.last_ts
        _add_counts(self.levels, self.level_first, other.levels, other.level_first, offset)
        _add_counts(self.sources, self.source_first, other.sources, other.source_first, offset)
        if other.first + offset < self.first:
            self.first, self.text, self.http = other.first + offset, other.text, other.http
        self.positions = sorted([*self.positions, *(p + offset for p in other.positions)])[:MAX_MARKERS_PER_GROUP]
        self.samples = sorted([*self.samples, *((p + offset, raw, text) for p, raw, text in other.samples)])[:MAX_SAMPLES]
        if other.frames is not None and (self.frames is None or other.frames[0] + offset < self.frames[0]):
            self.frames = (other.frames[0] + offset, *other.frames[1:])
        if other.exception is not None and (self.exception is None or other.exception[0] + offset < self.exception[0]):
            self.exception = (other.exception[0] + offset, other.exception[1])
        names_until = self._nth(MAX_NAMES_PER_GROUP)
        self.names = [n for n in self.names if n[0] <= names_until] + [
            (p + offset, names, service, pod, ts) for p, names, service, pod, ts in other.names if p + offset <= names_until
        ]
        markers_until = self._nth(MAX_MARKERS_PER_GROUP)
        self.markers = [m for m in self.markers if m[0] <= markers_until] + [
            (p + offset, version, sha, service, pod, ts)
            for p, version, sha, service, pod, ts in other.markers
            if p + offset <= markers_until
        ]

    def _nth(self, n: int) -> int:
        """Position of the group's n-th event: later events are past every per-group cap of n."""
        return self.positions[n - 1] if len(self.positions) >= n else NEVER


def _add_counts(counts: dict[str, int], firsts: dict[str, int], more: dict[str, int], more_firsts: dict[str, int], offset: int) -> None:
    for key, n in more.items():
        counts[key] = counts.get(key, 0) + n
        at = more_firsts[key] + offset
        if at < firsts.get(key, NEVER):
            firsts[key] = at


class LogPart:
    """One pass over the events of one reading unit (a source, a file, or a byte range of one).

    `add` is the only per-event cost. Parts are picklable once `seal`ed, and
    `LogStats.merge` turns parts, in reading order, into the statistics of one pass.
    """

    def __init__(self, window_start: datetime, window_end: datetime) -> None:
        self.shapes: list[Shape] = []
        self.minutes: dict[int, MinuteTotals] = {}
        self.events = 0
        self.untimed = 0
        self.read: dict[str, int] = {}
        self.out_of_window: dict[str, int] = {}
        self.error: str | None = None
        self._start = window_start.timestamp()
        self._end = window_end.timestamp()
        self._by_key: dict[bytes, Shape] = {}
        self._by_masked: dict[str, Shape] = {}
        self._by_group: dict[int, Shape] = {}
        self._coarse = TemplateMiner()

    def seal(self) -> LogPart:
        """Drop the lookup caches: what remains is the result, compact to send between processes."""
        self._by_key, self._by_masked, self._by_group = {}, {}, {}
        self._coarse = TemplateMiner()
        return self

    def add(self, event: LogEvent) -> None:
        source = event.source
        self.read[source] = self.read.get(source, 0) + 1
        ts = event.ts.timestamp() if event.ts is not None else None
        if ts is not None and not self._start <= ts <= self._end:
            self.out_of_window[source] = self.out_of_window.get(source, 0) + 1
            return
        self.events = position = self.events + 1
        text = signature_text(event)
        key = text.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)
        shape = self._by_key.get(key)
        if shape is None:
            shape = self._shape(text, key, position, event)
        shape.count = count = shape.count + 1
        level = event.level
        levels = shape.levels
        if (n := levels.get(level)) is None:
            levels[level] = 1
            shape.level_first[level] = position
        else:
            levels[level] = n + 1
        sources = shape.sources
        if (n := sources.get(source)) is None:
            sources[source] = 1
            shape.source_first[source] = position
        else:
            sources[source] = n + 1
        status = event.status
        if status is not None and status >= 500:
            shape.server_errors += 1
        if ts is None:
            shape.untimed += 1
            self.untimed += 1
        else:
            minute = int(ts // 60)
            minutes = shape.minutes
            if (n := minutes.get(minute)) is None:
                minutes[minute] = 1
                shape.first_in_minute[minute] = ts
            else:
                minutes[minute] = n + 1
                if ts < shape.first_in_minute[minute]:
                    shape.first_in_minute[minute] = ts
            if shape.first_ts is None or ts < shape.first_ts:
                shape.first_ts = ts
            if shape.last_ts is None or ts > shape.last_ts:
                shape.last_ts = ts
            self._add_minute(minute, level, status, event.duration_ms)
        if count <= MAX_MARKERS_PER_GROUP:
            # Only a group's first events can be sampled or named; a shape's first events include them.
            shape.positions.append(position)
            if count <= MAX_SAMPLES:
                shape.samples.append((position, event.raw[:MAX_SAMPLE_CHARS], text))
            if count <= MAX_NAMES_PER_GROUP and (where := origin(event)) is not None:
                shape.names.append((position, *where, ts))
            if level == "info" and ts is not None and (marker := deploy_marker(event)) is not None:
                shape.markers.append((position, *marker, ts))
        if event.frames and shape.frames is None:
            frames = event.frames
            shape.frames = (
                position,
                [str(f) for f in frames[:40]],
                [f.file.rsplit("/", 1)[-1] for f in frames if f.file],
                [f.function.rsplit(".", 1)[-1] for f in frames if f.function],
            )
        if event.exception and shape.exception is None:
            shape.exception = (position, event.exception[:1000])

    def _shape(self, text: str, key: bytes, position: int, event: LogEvent) -> Shape:
        masked = mask(text)
        shape = self._by_masked.get(masked)
        if shape is None:
            if len(self._by_masked) < MAX_SHAPES:
                shape = self._by_masked[masked] = Shape(text=text, first=position, http=is_access(event))
                self.shapes.append(shape)
            else:
                gid = self._coarse.add(text)
                if (shape := self._by_group.get(gid)) is None:
                    shape = self._by_group[gid] = Shape(text=text, first=position, http=is_access(event))
                    self.shapes.append(shape)
        if len(key) <= _CACHED_KEY_LEN:
            if len(self._by_key) >= _KEY_CACHE:
                self._by_key.clear()
            self._by_key[key] = shape
        return shape

    def _add_minute(self, minute: int, level: str, status: int | None, duration_ms: float | None) -> None:
        totals = self.minutes.get(minute)
        if totals is None:
            totals = self.minutes[minute] = MinuteTotals()
        totals.events += 1
        if level in ("error", "critical"):
            totals.errors += 1
        elif level == "warning":
            totals.warnings += 1
        if status is not None and status >= 500:
            totals.server_errors += 1
        if duration_ms is not None:
            totals.latency_sum_ms += duration_ms
            totals.latency_n += 1
