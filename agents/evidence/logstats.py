"""One pass over every log event, keeping only what the analysis needs.

Memory stays bounded whatever the volume: per template a per-minute count, a few
samples, frames and the set of sources; per minute the totals of events, errors,
5xx and latency; start-up lines that name a build (deploy markers).

The pass can be cut into parts read anywhere (in worker processes, one per file or
byte range): `LogPart` aggregates a part's events, and `LogStats.merge` folds the parts,
in reading order, into exactly the statistics of a single pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.evidence.templates import TemplateMiner, mask
from integrations.logs.base import LogEvent

MAX_SAMPLES = 3
MAX_SAMPLE_CHARS = 4000
MAX_TEXT_CHARS = 700
MAX_NAMES_PER_GROUP = 40
MAX_PODS = 5000
# Start-up lines are rare; a template seen this often is request traffic, not a build announcing itself.
MAX_MARKERS_PER_GROUP = 500
# Fields whose text says what went wrong; they join the message in the signature.
ERROR_FIELDS = ("error", "err", "body", "reason", "exception", "error_message", "detail", "cause", "error_description")
STATUS_FIELDS = ("status", "status_code", "statusCode", "http_status", "response_code", "code")
DURATION_MS_FIELDS = ("duration_ms", "responseTime", "response_time_ms", "latency_ms", "elapsed_ms", "took_ms")
DURATION_S_FIELDS = ("request_time", "duration_s", "upstream_response_time")
NAME_FIELDS = ("dependency", "upstream", "peer", "peer_service", "target", "host", "server", "db", "remote_service")
POD_FIELDS = ("pod", "hostname", "pod_name", "kubernetes_pod_name", "k8s_pod")

_MARKER = re.compile(
    r"\b(?:version|build|revision|release|commit|sha|git_sha|image)\b[\s:=\"']+"
    r"(?P<version>v?\d+\.\d+(?:\.\d+)?(?:[-+.][\w.]+)?|[0-9a-f]{7,40})(?:\s*\((?P<sha>[0-9a-f]{7,40})\))?",
    re.IGNORECASE,
)
_IMAGE_TAG = re.compile(r"image \"?[\w./-]+:(?P<version>[\w.-]+)\"?", re.IGNORECASE)
_STARTING = re.compile(r"\bstart(?:ing|ed)\s+(?P<service>[a-z][\w-]{2,})\s+(?:version|build|v\d)", re.IGNORECASE)
_POD_SUFFIX = re.compile(r"^(?P<name>[a-z][a-z0-9-]*?)(?:-[a-z0-9]{6,10})?-[a-z0-9]{5}$")


def service_of_pod(pod: str) -> str:
    """The workload a Kubernetes pod belongs to: `checkout-7d9f8b6c5-x2k4q` → `checkout`."""
    match = _POD_SUFFIX.match(pod)
    return match.group("name") if match else pod


@dataclass(slots=True)
class GroupStats:
    gid: int
    count: int = 0
    minutes: dict[int, int] = field(default_factory=dict)
    first_in_minute: dict[int, float] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    untimed: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    text: str = ""
    frames: list[str] = field(default_factory=list)
    frame_files: set[str] = field(default_factory=set)
    frame_functions: set[str] = field(default_factory=set)
    exception: str | None = None
    names: dict[str, int] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    http: bool = False

    @property
    def level(self) -> str:
        return max(self.levels.items(), key=lambda kv: kv[1])[0] if self.levels else ""

    @property
    def source(self) -> str:
        return max(self.sources.items(), key=lambda kv: kv[1])[0] if self.sources else ""


@dataclass(slots=True)
class MinuteTotals:
    events: int = 0
    errors: int = 0
    warnings: int = 0
    server_errors: int = 0
    latency_sum_ms: float = 0.0
    latency_n: int = 0


@dataclass(slots=True)
class DeployMarker:
    """A build first seen at start-up in the logs: a rolling deploy begins when its first pod starts."""

    version: str
    sha: str | None
    first_seen: datetime
    service: str
    pods: set[str] = field(default_factory=set)


_STATUS_KEYS = frozenset(STATUS_FIELDS) | {"res"}
_DURATION_KEYS = frozenset(DURATION_MS_FIELDS + DURATION_S_FIELDS)
_ERROR_KEYS = frozenset(ERROR_FIELDS)


def _status(fields: Mapping[str, Any]) -> int | None:
    # Intersecting key sets runs in C; most events carry none of these fields.
    if not _STATUS_KEYS.intersection(fields):
        return None
    for key in STATUS_FIELDS:
        value = fields.get(key)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
        if isinstance(value, str) and len(value) == 3 and value.isdigit():
            return int(value)
    res = fields.get("res")
    if isinstance(res, dict):
        value = res.get("statusCode") or res.get("status")
        if isinstance(value, int):
            return value
    return None


def _duration_ms(fields: Mapping[str, Any]) -> float | None:
    if not _DURATION_KEYS.intersection(fields):
        return None
    for key in DURATION_MS_FIELDS:
        value = fields.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    for key in DURATION_S_FIELDS:
        value = fields.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) * 1000.0
        if isinstance(value, str):
            try:
                return float(value) * 1000.0
            except ValueError:
                continue
    return None


def _is_access(event: LogEvent) -> bool:
    """An access-log line: a request and its status, with no error text of its own."""
    fields = event.fields
    return bool(fields) and "method" in fields and "status" in fields and not any(k in fields for k in ERROR_FIELDS) and not event.exception


def signature_text(event: LogEvent) -> str:
    """The message plus whatever error text the event carries in fields or an exception line."""
    text = event.message or event.raw.split("\n", 1)[0]
    fields = event.fields
    if fields and not _ERROR_KEYS.isdisjoint(fields):
        for key in ERROR_FIELDS:
            value = fields.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("msg") or value.get("type")
            if isinstance(value, str) and value and value not in text:
                text = f"{text} | {value[:300]}"
    if event.exception and event.exception not in text:
        text = f"{text} | {event.exception}"
    return text[:MAX_TEXT_CHARS]


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
_PART_BITS = 40
_NEVER = 1 << 80


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
        return self.positions[n - 1] if len(self.positions) >= n else _NEVER


def _add_counts(counts: dict[str, int], firsts: dict[str, int], more: dict[str, int], more_firsts: dict[str, int], offset: int) -> None:
    for key, n in more.items():
        counts[key] = counts.get(key, 0) + n
        at = more_firsts[key] + offset
        if at < firsts.get(key, _NEVER):
            firsts[key] = at


def _in_order(counts: dict[str, int], firsts: dict[str, int]) -> dict[str, int]:
    # Ties in `level` and `source` go to the key seen first, as in a single pass.
    return dict(sorted(counts.items(), key=lambda kv: firsts[kv[0]]))


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
        fields = event.fields
        status = _status(fields) if fields else None
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
            self._add_minute(minute, level, status, fields)
        if count <= MAX_MARKERS_PER_GROUP:
            # Only a group's first events can be sampled or named; a shape's first events include them.
            shape.positions.append(position)
            if count <= MAX_SAMPLES:
                shape.samples.append((position, event.raw[:MAX_SAMPLE_CHARS], text))
            if count <= MAX_NAMES_PER_GROUP and fields:
                _names(shape, position, fields, ts)
            if level == "info" and ts is not None:
                _marker(shape, position, event, ts)
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
                shape = self._by_masked[masked] = Shape(text=text, first=position, http=_is_access(event))
                self.shapes.append(shape)
            else:
                gid = self._coarse.add(text)
                if (shape := self._by_group.get(gid)) is None:
                    shape = self._by_group[gid] = Shape(text=text, first=position, http=_is_access(event))
                    self.shapes.append(shape)
        if len(key) <= _CACHED_KEY_LEN:
            if len(self._by_key) >= _KEY_CACHE:
                self._by_key.clear()
            self._by_key[key] = shape
        return shape

    def _add_minute(self, minute: int, level: str, status: int | None, fields: Mapping[str, Any]) -> None:
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
        if fields:
            duration = _duration_ms(fields)
            if duration is not None:
                totals.latency_sum_ms += duration
                totals.latency_n += 1


def _names(shape: Shape, position: int, fields: Mapping[str, Any], ts: float | None) -> None:
    names = tuple(v for key in NAME_FIELDS if isinstance(v := fields.get(key), str) and 0 < len(v) < 120)
    service = fields.get("service")
    pod = next((v for k in POD_FIELDS if isinstance(v := fields.get(k), str) and v), None)
    if pod is not None and not isinstance(service, str):
        service = service_of_pod(pod)
    if not (isinstance(service, str) and service):
        service = None
    if names or service is not None or pod is not None:
        shape.names.append((position, names, service, pod, ts))


def _marker(shape: Shape, position: int, event: LogEvent, ts: float) -> None:
    message = event.message
    version_field = event.fields.get("version") if event.fields else None
    if isinstance(version_field, str):
        message = f"{message} version {version_field}"
    if not ("ersion" in message or "uild" in message or "evision" in message or "mage" in message or "elease" in message):
        return
    match = _MARKER.search(message) or _IMAGE_TAG.search(message)
    if match is None:
        return
    pod = next((v for k in POD_FIELDS if isinstance(v := event.fields.get(k), str) and v), "") if event.fields else ""
    service = event.fields.get("service") if event.fields else None
    if not isinstance(service, str):
        named = _STARTING.search(event.message)
        service = named.group("service") if named else service_of_pod(pod) if pod else ""
    shape.markers.append((position, match.group("version"), match.groupdict().get("sha"), service, pod, ts))


class LogStats:
    """What the analysis reads of the logs: per template, per minute, deploy markers and pods."""

    def __init__(self) -> None:
        self.miner = TemplateMiner()
        self.groups: dict[int, GroupStats] = {}
        self.minutes: dict[int, MinuteTotals] = {}
        self.markers: dict[str, DeployMarker] = {}
        self.pods: dict[str, float] = {}
        self.events = 0
        self.untimed = 0
        self.read: dict[str, int] = {}
        self.out_of_window: dict[str, int] = {}

    @classmethod
    def merge(cls, parts: Iterable[LogPart]) -> LogStats:
        """The statistics of one pass over the parts' events, parts given in reading order."""
        stats = cls()
        merged: dict[int, Shape] = {}
        for index, part in enumerate(parts):
            offset = index << _PART_BITS
            # Shapes come in the order their first events were read, so the miner meets
            # each shape when one pass would have: group ids and templates come out the same.
            for shape in part.shapes:
                gid = stats.miner.add(shape.text)
                if (into := merged.get(gid)) is None:
                    into = merged[gid] = Shape(text=shape.text, first=_NEVER, http=shape.http)
                into.absorb(shape, offset)
            stats._add_totals(part)
        stats._finish(merged)
        return stats

    def _add_totals(self, part: LogPart) -> None:
        self.events += part.events
        self.untimed += part.untimed
        for name, n in part.read.items():
            self.read[name] = self.read.get(name, 0) + n
        for name, n in part.out_of_window.items():
            self.out_of_window[name] = self.out_of_window.get(name, 0) + n
        for minute, more in part.minutes.items():
            if (totals := self.minutes.get(minute)) is None:
                self.minutes[minute] = more
                continue
            totals.events += more.events
            totals.errors += more.errors
            totals.warnings += more.warnings
            totals.server_errors += more.server_errors
            totals.latency_sum_ms += more.latency_sum_ms
            totals.latency_n += more.latency_n

    def _finish(self, merged: dict[int, Shape]) -> None:
        pods: list[tuple[int, str, float]] = []
        markers: list[MarkerNote] = []
        for gid in sorted(merged):
            shape = merged[gid]
            group = GroupStats(
                gid=gid,
                count=shape.count,
                minutes=shape.minutes,
                first_in_minute=shape.first_in_minute,
                first_ts=shape.first_ts,
                last_ts=shape.last_ts,
                untimed=shape.untimed,
                levels=_in_order(shape.levels, shape.level_first),
                sources=_in_order(shape.sources, shape.source_first),
                samples=[raw for _, raw, _ in shape.samples],
                texts=[text for _, _, text in shape.samples],
                text=shape.text,
                server_errors=shape.server_errors,
                http=shape.http,
            )
            if shape.frames is not None:
                _, group.frames, files, functions = shape.frames
                group.frame_files = set(files)
                group.frame_functions = set(functions)
            if shape.exception is not None:
                group.exception = shape.exception[1]
            for position, names, service, pod, ts in sorted(shape.names):
                for name in names:
                    group.names[name] = group.names.get(name, 0) + 1
                if service is not None:
                    group.services[service] = group.services.get(service, 0) + 1
                if pod is not None and ts is not None:
                    pods.append((position, pod, ts))
            markers.extend(shape.markers)
            self.groups[gid] = group
        for _, pod, ts in sorted(pods):
            if len(self.pods) >= MAX_PODS:
                break
            self.pods.setdefault(pod, ts)
        for _, version, sha, service, pod, ts in sorted(markers):
            self._marker(version, sha, service, pod, ts)

    def _marker(self, version: str, sha: str | None, service: str, pod: str, ts: float) -> None:
        key = f"{version}|{sha or ''}"
        at = datetime.fromtimestamp(ts, UTC)
        marker = self.markers.get(key)
        if marker is None:
            marker = self.markers[key] = DeployMarker(version=version, sha=sha, first_seen=at, service=service)
        elif at < marker.first_seen:
            marker.first_seen = at
        if pod and len(marker.pods) < 100:
            marker.pods.add(pod)

    def template(self, gid: int) -> str:
        return self.miner.template(gid)
