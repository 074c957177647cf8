"""One pass over every log event, keeping only what the analysis needs.

Memory stays bounded whatever the volume: per template a per-minute count, a few
samples, frames and the set of sources; per minute the totals of events, errors,
5xx and latency; start-up lines that name a build (deploy markers).

The pass can be cut into parts read anywhere (in worker processes, one per file or
byte range): `LogPart` aggregates a part's events, and `LogStats.merge` folds the parts,
in reading order, into exactly the statistics of a single pass. A part's work is in
`log_parts`, and what it reads of each event in `log_events`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agents.evidence.log_parts import NEVER, PART_BITS, LogPart, MarkerNote, MinuteTotals, Shape
from agents.evidence.templates import TemplateMiner

__all__ = ["DeployMarker", "GroupStats", "LogPart", "LogStats", "MinuteTotals"]

MAX_PODS = 5000


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
    # Where the group's first event stands in the reading order: the order of output without timestamps.
    first_position: int = 0

    @property
    def level(self) -> str:
        return max(self.levels.items(), key=lambda kv: kv[1])[0] if self.levels else ""

    @property
    def source(self) -> str:
        return max(self.sources.items(), key=lambda kv: kv[1])[0] if self.sources else ""


@dataclass(slots=True)
class DeployMarker:
    """A build first seen at start-up in the logs: a rolling deploy begins when its first pod starts."""

    version: str
    sha: str | None
    first_seen: datetime
    service: str
    pods: set[str] = field(default_factory=set)


def _in_order(counts: dict[str, int], firsts: dict[str, int]) -> dict[str, int]:
    # Ties in `level` and `source` go to the key seen first, as in a single pass.
    return dict(sorted(counts.items(), key=lambda kv: firsts[kv[0]]))


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
            offset = index << PART_BITS
            # Shapes come in the order their first events were read, so the miner meets
            # each shape when one pass would have: group ids and templates come out the same.
            for shape in part.shapes:
                gid = stats.miner.add(shape.text)
                if (into := merged.get(gid)) is None:
                    into = merged[gid] = Shape(text=shape.text, first=NEVER, http=shape.http)
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
                first_position=shape.first,
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
