"""Reading every log source of an investigation once, into aggregated parts, within the log deadline.

A source that declares the `SplittableLogSource` ability is cut into units read by
worker processes when its volume makes that pay; every other source streams on a
thread of its own, so that a hanging source cannot hold the investigation.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from agents.evidence import parallel
from agents.evidence.logstats import LogPart, LogStats
from agents.evidence.model import EvidenceInputs
from core.degraded import Degradation
from integrations.errors import SourceError
from integrations.logs.base import LogEvent, LogSource
from integrations.logs.capabilities import LogUnit, SlicedLogSource, SplittableLogSource

Progress = Callable[[str, str], None]
BATCH = 2000
# Below this much data, starting worker processes costs more than it saves.
PARALLEL_MIN_VOLUME = 8 * 1024 * 1024
# Several units per worker, so that one slow unit does not leave the other cores idle at the end.
UNITS_PER_WORKER = 16
MIN_UNIT_VOLUME = 4 * 1024 * 1024

T = TypeVar("T")
_Channel = queue.Queue[list[LogEvent] | BaseException | None]


def read_logs(
    inputs: EvidenceInputs, progress: Progress, degraded: list[Degradation], reads: list[dict[str, Any]] | None = None
) -> LogStats:
    """Every log source of `inputs` read and merged; what went wrong is added to `degraded`, what log stores read to `reads`."""
    stats = LogStats.merge(_parts(inputs, degraded))
    for source in inputs.log_sources:
        if isinstance(source, SlicedLogSource):
            _account_for(source, degraded, reads)
    for name, outside in stats.out_of_window.items():
        if outside > stats.read.get(name, 0):
            degraded.append(
                Degradation(f"logs:{name}", f"{outside} of its events fall outside the window (clock skew or a different day?)")
            )
    if stats.untimed and stats.untimed > stats.events // 2:
        degraded.append(Degradation("logs", f"{stats.untimed} of {stats.events} events carry no timestamp; onset and trends use the rest"))
    streams = len(stats.read)
    # `read` counts files and remote streams (a Loki query, a CloudWatch group) alike.
    progress("reading", f"read {stats.events:,} log events from {streams} {'source' if streams == 1 else 'sources'}")
    return stats


def _parts(inputs: EvidenceInputs, degraded: list[Degradation]) -> Iterator[LogPart]:
    """Every source read into parts, in source order; splittable ones by worker processes when that pays."""
    start, end, deadline_s = inputs.window_start, inputs.window_end, inputs.log_deadline_s
    plan = _plan(inputs.log_sources, deadline_s)
    pool = parallel.Pool([u for _, units in plan for u in units or ()], start, end, parallel.worker_count()) if plan else None
    futures = iter(pool.futures if pool is not None else ())
    give_up = time.monotonic() + deadline_s
    try:
        for source, units in plan or [(source, None) for source in inputs.log_sources]:
            if units is None and isinstance(source, SlicedLogSource):
                yield from _read_sliced(source, start, end, deadline_s, degraded)
                continue
            if units is None:
                yield _read_inline(source, start, end, deadline_s, degraded)
                continue
            label = f"logs:{source.name}"
            stopped = False
            for unit, future in zip(units, futures, strict=False):
                try:
                    part = future.result(timeout=max(give_up - time.monotonic(), 0.0))
                except TimeoutError:
                    stopped = True
                    continue
                except parallel.WorkerLost:
                    part = _read_inline(_UnitSource(unit), start, end, max(give_up - time.monotonic(), 0.01), degraded, label)
                if part.error is not None:
                    degraded.append(Degradation(label, part.error))
                yield part
            if stopped:
                degraded.append(Degradation(label, f"stopped reading after {deadline_s:.0f}s; the evidence covers what was read by then"))
    finally:
        if pool is not None:
            pool.close()


def _plan(sources: list[LogSource], deadline_s: float) -> list[tuple[LogSource, list[LogUnit] | None]] | None:
    """Units for worker processes, for the splittable sources (None for the others); None when reading in-process pays better."""
    workers = parallel.worker_count()
    if workers < 2:
        return None
    volumes = [(source, _bounded(source.volume, deadline_s) if isinstance(source, SplittableLogSource) else None) for source in sources]
    total = sum(volume or 0 for _, volume in volumes)
    if total < PARALLEL_MIN_VOLUME:
        return None
    target = max(MIN_UNIT_VOLUME, total // (workers * UNITS_PER_WORKER))
    plan: list[tuple[LogSource, list[LogUnit] | None]] = []
    for source, volume in volumes:
        units = _bounded(partial(source.units, target), deadline_s) if volume and isinstance(source, SplittableLogSource) else None
        plan.append((source, units))
    return plan


def _bounded(call: Callable[[], T], deadline_s: float) -> T | None:
    """`call()` on a thread bounded by the log deadline; None when it fails or hangs (a stale mount).

    The source is then read in-process, where what is wrong becomes a degraded entry as it always has.
    """
    answer: queue.Queue[T | None] = queue.Queue()

    def run() -> None:
        try:
            answer.put(call())
        except (OSError, SourceError):
            answer.put(None)

    threading.Thread(target=run, daemon=True, name="logs-plan").start()
    try:
        return answer.get(timeout=deadline_s)
    except queue.Empty:
        return None


class _UnitSource:
    """One unit as a log source, for reading it in-process when its worker is gone."""

    def __init__(self, unit: LogUnit) -> None:
        self.unit = unit
        self.name = unit.name

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        return self.unit.events(start, end)


def _read_inline(
    source: LogSource, start: datetime, end: datetime, deadline_s: float, degraded: list[Degradation], label: str | None = None
) -> LogPart:
    part = LogPart(start, end)
    for event in _stream(source, start, end, deadline_s, degraded, label):
        part.add(event)
    return part.seal()


def _read_sliced(source: SlicedLogSource, start: datetime, end: datetime, deadline_s: float, degraded: list[Degradation]) -> list[LogPart]:
    """A store read newest slice first until a cap or the deadline ends it; its parts returned in time order for the merge."""
    parts: list[LogPart] = []
    give_up = time.monotonic() + deadline_s
    label = f"logs:{source.name}"
    for first, last in source.slices(start, end):
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            source.account.truncated = f"stopped reading after {deadline_s:.0f}s"
            break
        part = LogPart(start, end)
        for event in _stream(_Slice(source, first, last), first, last, remaining, degraded, label):
            part.add(event)
        parts.append(part.seal())
        if source.exhausted:
            break
    return parts[::-1]


def _account_for(source: SlicedLogSource, degraded: list[Degradation], reads: list[dict[str, Any]] | None) -> None:
    """A store's read account into the report: cut reads and empty ones are said, so that "no logs" never reads as healthy."""
    account = source.account
    label = f"logs:{source.name}"
    if reads is not None:
        reads.append(account.summary())
    if account.truncated:
        kept = f"from {account.covered_from:%H:%M:%S} UTC" if account.covered_from else "part of the window"
        degraded.append(
            Degradation(
                label, f"truncated: {account.truncated}; kept {account.events:,} events ({kept}, the newest first) of {account.query}"
            )
        )
    elif account.empty and account.failed is None:
        window = f"{account.start:%Y-%m-%d %H:%M} to {account.end:%H:%M} UTC" if account.start and account.end else "the window"
        degraded.append(Degradation(label, f"found no events for {account.query} in {window}"))


class _Slice:
    """One slice of a store's current read, as a log source for the reading thread."""

    def __init__(self, source: SlicedLogSource, first: datetime, last: datetime) -> None:
        self.source = source
        self.name = source.name
        self.range = (first, last)

    def events(self, _start: datetime, _end: datetime) -> Iterator[LogEvent]:
        return self.source.read_slice(*self.range)


def _pump(source: LogSource, start: datetime, end: datetime, out: _Channel, stop: threading.Event) -> None:
    batch: list[LogEvent] = []
    try:
        for event in source.events(start, end):
            batch.append(event)
            if len(batch) >= BATCH:
                out.put(batch)
                batch = []
                if stop.is_set():
                    return
        if batch:
            out.put(batch)
        out.put(None)
    except BaseException as exc:  # noqa: BLE001  (handed to the reader, which records it as degraded)
        out.put(exc)


def _stream(
    source: LogSource, start: datetime, end: datetime, deadline_s: float, degraded: list[Degradation], label: str | None = None
) -> Iterator[LogEvent]:
    """Events of one source, read in a thread so a hanging source cannot hold the investigation."""
    channel: _Channel = queue.Queue(maxsize=32)
    stop = threading.Event()
    thread = threading.Thread(target=_pump, args=(source, start, end, channel, stop), daemon=True, name=f"logs-{source.name}")
    thread.start()
    give_up = time.monotonic() + deadline_s
    label = label or f"logs:{source.name}"
    while True:
        remaining = give_up - time.monotonic()
        try:
            item = channel.get(timeout=max(remaining, 0.01))
        except queue.Empty:
            stop.set()
            degraded.append(Degradation(label, f"stopped reading after {deadline_s:.0f}s; the evidence covers what was read by then"))
            return
        if item is None:
            return
        if isinstance(item, BaseException):
            degraded.append(Degradation(label, f"{type(item).__name__}: {item}"))
            return
        yield from item
