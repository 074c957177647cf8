"""One pass over every log event, keeping only what the analysis needs.

Memory stays bounded whatever the volume: per template a per-minute count, a few
samples, frames and the set of sources; per minute the totals of events, errors,
5xx and latency; start-up lines that name a build (deploy markers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.evidence.templates import TemplateMiner
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


class LogStats:
    """Accumulates events from every source; `add` is the only per-event cost."""

    def __init__(self, window_start: datetime, window_end: datetime) -> None:
        self.miner = TemplateMiner()
        self.groups: dict[int, GroupStats] = {}
        self.minutes: dict[int, MinuteTotals] = {}
        self.markers: dict[str, DeployMarker] = {}
        self.pods: dict[str, float] = {}
        self.events = 0
        self.untimed = 0
        self.out_of_window: dict[str, int] = {}
        self._start = window_start.timestamp()
        self._end = window_end.timestamp()

    def add(self, event: LogEvent) -> None:
        ts = event.ts.timestamp() if event.ts is not None else None
        if ts is not None and not self._start <= ts <= self._end:
            self.out_of_window[event.source] = self.out_of_window.get(event.source, 0) + 1
            return
        self.events += 1
        text = signature_text(event)
        gid = self.miner.add(text)
        group = self.groups.get(gid)
        if group is None:
            group = self.groups[gid] = GroupStats(gid=gid, text=text, http=_is_access(event))
        group.count += 1
        level = event.level
        group.levels[level] = group.levels.get(level, 0) + 1
        source = event.source
        group.sources[source] = group.sources.get(source, 0) + 1
        fields = event.fields
        status = _status(fields) if fields else None
        if status is not None and status >= 500:
            group.server_errors += 1
        if ts is None:
            group.untimed += 1
            self.untimed += 1
        else:
            minute = int(ts // 60)
            count = group.minutes.get(minute)
            if count is None:
                group.minutes[minute] = 1
                group.first_in_minute[minute] = ts
            else:
                group.minutes[minute] = count + 1
                if ts < group.first_in_minute[minute]:
                    group.first_in_minute[minute] = ts
            if group.first_ts is None or ts < group.first_ts:
                group.first_ts = ts
            if group.last_ts is None or ts > group.last_ts:
                group.last_ts = ts
            self._add_minute(minute, level, status, fields)
        if group.count <= MAX_SAMPLES:
            group.samples.append(event.raw[:MAX_SAMPLE_CHARS])
            group.texts.append(text)
        if event.frames and not group.frames:
            group.frames = [str(f) for f in event.frames[:40]]
            group.frame_files = {f.file.rsplit("/", 1)[-1] for f in event.frames if f.file}
            group.frame_functions = {f.function.rsplit(".", 1)[-1] for f in event.frames if f.function}
        if event.exception and group.exception is None:
            group.exception = event.exception[:1000]
        if group.count <= MAX_NAMES_PER_GROUP and fields:
            self._names(group, fields, ts)
        if level == "info" and ts is not None and group.count <= MAX_MARKERS_PER_GROUP:
            self._marker(event, ts)

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

    def _names(self, group: GroupStats, fields: Mapping[str, Any], ts: float | None) -> None:
        for key in NAME_FIELDS:
            value = fields.get(key)
            if isinstance(value, str) and 0 < len(value) < 120:
                group.names[value] = group.names.get(value, 0) + 1
        service = fields.get("service")
        pod = next((v for k in POD_FIELDS if isinstance(v := fields.get(k), str) and v), None)
        if pod is not None:
            if len(self.pods) < MAX_PODS and pod not in self.pods and ts is not None:
                self.pods[pod] = ts
            if not isinstance(service, str):
                service = service_of_pod(pod)
        if isinstance(service, str) and service:
            group.services[service] = group.services.get(service, 0) + 1

    def _marker(self, event: LogEvent, ts: float) -> None:
        message = event.message
        version_field = event.fields.get("version") if event.fields else None
        if isinstance(version_field, str):
            message = f"{message} version {version_field}"
        if not ("ersion" in message or "uild" in message or "evision" in message or "mage" in message or "elease" in message):
            return
        match = _MARKER.search(message) or _IMAGE_TAG.search(message)
        if match is None:
            return
        version = match.group("version")
        sha = match.groupdict().get("sha")
        pod = next((v for k in POD_FIELDS if isinstance(v := event.fields.get(k), str) and v), "") if event.fields else ""
        service = event.fields.get("service") if event.fields else None
        if not isinstance(service, str):
            named = _STARTING.search(event.message)
            service = named.group("service") if named else service_of_pod(pod) if pod else ""
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
