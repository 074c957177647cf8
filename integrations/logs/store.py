"""What every log store shares (CloudWatch, S3, Loki, Elasticsearch, Datadog, ...): bounds, slices, the read account, the cache.

A store kind subclasses `LogStore` and implements two things: `pages(start, end, session)`,
the store's records for a time range as pages in ascending time, each page as it arrives,
every API call made through `session.call`; and `describe()`, the query and target in
words. The base turns records into `LogEvent`s with the same parser as files (so
signatures, onset and HTTP statistics work the same), keeps the read within its event
and byte caps and its deadline, caches what it read, and keeps an account of the read
for the report: events, bytes, API calls, what cut it short, or why it found nothing.

The evidence engine reads a store slice by slice, newest slice first (`slices`), so that
when a cap or the deadline cuts the read, what was kept is the part of the window just
before the alert, which matters most; it then merges the slices in time order.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field

from core.timeparse import as_utc
from integrations.errors import SourceError
from integrations.logs.base import LogEvent
from integrations.logs.parsing import parse_stream, read_fields
from integrations.plugin import SourceOptions
from integrations.remote_calls import Deadline, with_retries

T = TypeVar("T")
# Enough slices that a cut keeps most of the newest part, few enough that each costs one or two calls.
SLICES = 8
MIN_SLICE = timedelta(minutes=2)
# Past this, a cached file is dropped however fresh: the cache must not fill the worker's disk.
CACHE_MAX_BYTES = 2 * 1024**3
# Files no source would reuse any more (the longest sensible TTL) are removed when the cache is trimmed.
CACHE_MAX_AGE_S = 6 * 3600
_POD_KEYS = ("pod", "pod_name", "k8s.pod.name", "kubernetes.pod_name", "kubernetes.pod.name")


class StoreOptions(SourceOptions):
    """Bounds every log-store kind accepts; each kind's options add where and what to read."""

    max_events: int = Field(500_000, ge=1, description="most events one investigation reads from this source; the newest are kept")
    max_bytes: int = Field(256 * 1024**2, ge=1024, description="most bytes of log text one investigation reads from this source")
    deadline_s: float = Field(60.0, gt=0, description="longest time for the whole read, retries included; what was read by then counts")
    timeout_s: float = Field(15.0, gt=0, description="longest wait for one request")
    retries: int = Field(4, ge=0, le=10, description="retries of one request on throttling and transient errors, within the deadline")
    cache_ttl_s: float = Field(300.0, ge=0, description="how long a read of the same source and window is reused (0: never)")


@dataclass(frozen=True, slots=True)
class Record:
    """One entry as the store returned it: its time (UTC), its text as written, and its structured fields as strings."""

    ts: datetime | None
    line: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ReadAccount:
    """What one read of a store covered, for the report: the responder must tell "no logs" from "healthy"."""

    source: str
    query: str
    start: datetime | None = None
    end: datetime | None = None
    events: int = 0
    bytes: int = 0
    api_calls: int = 0
    cached_slices: int = 0
    # From where on the window was read whole: when cut, the read kept [covered_from, end].
    covered_from: datetime | None = None
    truncated: str | None = None
    # A permanent error before any event (auth, a missing index): said once by the degraded entry it raised.
    failed: str | None = None
    partial: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.events == 0

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "query": self.query,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "events": self.events,
            "bytes": self.bytes,
            "api_calls": self.api_calls,
            "cached_slices": self.cached_slices,
            "covered_from": self.covered_from.isoformat() if self.covered_from else None,
            "truncated": self.truncated,
            "failed": self.failed,
            "partial": list(self.partial),
        }


class Session:
    """One read's calls: each counted, bounded by what remains of the deadline, retried on `RetryableError`."""

    def __init__(self, options: StoreOptions, account: ReadAccount, deadline: Deadline) -> None:
        self.options = options
        self.account = account
        self.deadline = deadline
        self._cursors: set[str] = set()

    def follow(self, cursor: object) -> None:
        """Note the cursor of the next page; SourceError when the store gave it before (a page loop would read for ever)."""
        key = repr(cursor)
        if key in self._cursors:
            raise SourceError(f"the store returned a page cursor it had returned before ({key[:40]}); stopped to avoid reading in a loop")
        self._cursors.add(key)

    def timeout(self) -> float:
        """The wait one request may take now: its own timeout, or less when the deadline is near."""
        return self.deadline.timeout(self.options.timeout_s)

    def call(self, fn: Callable[[], T], what: str = "request") -> T:
        """`fn()` with retries on RetryableError; SourceError when the deadline passes first."""

        def once() -> T:
            self.deadline.timeout(self.options.timeout_s)
            self.account.api_calls += 1
            return fn()

        try:
            return with_retries(once, retries=self.options.retries, deadline=self.deadline)
        except SourceError as exc:
            raise SourceError(f"{what}: {exc}") from None


class ReadCut(Exception):
    """A cap or the deadline ended the read; what was read stays."""


class LogStore(ABC):
    """A log store as a log source; subclasses implement `pages` and `describe`."""

    kind: str = "store"

    def __init__(self, options: StoreOptions, name: str | None = None) -> None:
        self.options = options
        self.name = name or options.name or self.kind
        self.account = ReadAccount(self.name, self.describe())
        self._deadline: Deadline | None = None

    @abstractmethod
    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        """Records in [start, end], ascending in time, page by page as the store answers."""

    @abstractmethod
    def describe(self) -> str:
        """The query and target in words, for the report ("no events for ... in ..."); never a secret."""

    def cache_key(self) -> dict[str, Any]:
        """What identifies the data this source reads: its options but the bounds and the label."""
        return self.options.model_dump(mode="json", exclude={"name", *StoreOptions.model_fields})

    def begin(self, start: datetime, end: datetime) -> None:
        """Start a read of [start, end]: a fresh account and deadline, shared by the slices that follow."""
        self.account = ReadAccount(self.name, self.describe(), as_utc(start), as_utc(end))
        self._deadline = Deadline(self.options.deadline_s)

    def slices(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """[start, end] cut into consecutive ranges, newest first, for a read that keeps the newest part when cut."""
        self.begin(start, end)
        start, end = as_utc(start), as_utc(end)
        count = max(1, min(SLICES, int((end - start) / MIN_SLICE)))
        step = (end - start) / count
        bounds = [start + step * i for i in range(count)] + [end]
        # Adjacent slices share no instant: the store's ranges include both ends.
        ranges = [(bounds[i] if i == 0 else bounds[i] + timedelta(microseconds=1), bounds[i + 1]) for i in range(count)]
        return ranges[::-1]

    @property
    def exhausted(self) -> bool:
        """Whether a cap, the deadline or a permanent error ended the read: later slices would read nothing."""
        return self.account.truncated is not None or self.account.failed is not None

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        """Events in [start, end], in time order, within the caps and the deadline (one read, one account)."""
        self.begin(start, end)
        return self.read_slice(start, end)

    def read_slice(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        """The events of one range of the current read, from the cache when a fresh copy is there."""
        if self._deadline is None:
            self.begin(start, end)
        start, end = as_utc(start), as_utc(end)
        cached = _cache_path(self, start, end)
        if cached is not None and _fresh(cached, self.options.cache_ttl_s):
            self.account.cached_slices += 1
            return self._events(_read_cache(cached), start, end)
        return self._events(self._fetch(start, end, cached), start, end)

    def _fetch(self, start: datetime, end: datetime, cached: Path | None) -> Iterator[Record]:
        assert self._deadline is not None
        session = Session(self.options, self.account, self._deadline)
        writer = _CacheWriter(cached) if cached is not None else None
        complete = False
        try:
            for page in self.pages(start, end, session):
                if writer is not None:
                    writer.add(page)
                yield from page
            complete = True
        finally:
            if writer is not None:
                writer.close(keep=complete and not self.exhausted)

    def _events(self, records: Iterator[Record], start: datetime, end: datetime) -> Iterator[LogEvent]:
        account, options = self.account, self.options
        if self.exhausted:
            return
        try:
            for record in records:
                if account.events >= options.max_events:
                    raise ReadCut(f"reached max_events ({options.max_events:,})")
                if account.bytes >= options.max_bytes:
                    raise ReadCut(f"reached max_bytes ({options.max_bytes / 1e6:,.0f} MB)")
                if self._deadline is not None and self._deadline.remaining() <= 0:
                    raise ReadCut(f"reached the deadline of {options.deadline_s:g}s")
                account.bytes += len(record.line)
                for event in _to_events(record, self.name):
                    if event.ts is not None and not (start <= event.ts <= end):
                        continue
                    account.events += 1
                    yield event
        except ReadCut as cut:
            account.truncated = str(cut)
            return
        except SourceError as exc:
            if account.events == 0:
                # The other slices would fail the same way: one degraded entry, not one per slice.
                account.failed = str(exc)
                raise
            # Pages already read still count; the rest of the window is missing, and the account says so.
            account.truncated = str(exc)
            return
        finally:
            records_close = getattr(records, "close", None)
            if records_close is not None:
                records_close()
        # Slices are read newest first: a slice read whole extends the part of the window known complete.
        if account.covered_from is None or start < account.covered_from:
            account.covered_from = start


def _to_events(record: Record, source: str) -> Iterator[LogEvent]:
    """The record's line parsed as a file's line would be, its time and fields filling what the line does not say."""
    for event in parse_stream(record.line.splitlines() or [""], source):
        if event.ts is None:
            event.ts = record.ts
        if record.labels:
            for key, value in record.labels.items():
                event.attributes.setdefault(key, value)
            read_fields(event, record.labels)
            if event.pod is None:
                event.pod = next((record.labels[k] for k in _POD_KEYS if record.labels.get(k)), None)
        yield event


def _cache_dir() -> Path | None:
    # The settings import stays local: integrations read configuration only where they need it.
    from core.settings import get_settings

    root = get_settings().data_dir / "cache" / "logs"
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return root


def _cache_path(store: LogStore, start: datetime, end: datetime) -> Path | None:
    if store.options.cache_ttl_s <= 0:
        return None
    root = _cache_dir()
    if root is None:
        return None
    key = json.dumps([store.kind, store.cache_key(), start.isoformat(), end.isoformat()], sort_keys=True, default=str)
    return root / f"{hashlib.sha256(key.encode()).hexdigest()}.jsonl.gz"


def _fresh(path: Path, ttl_s: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < ttl_s
    except OSError:
        return False


def _read_cache(path: Path) -> Iterator[Record]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            ts, text, labels = json.loads(line)
            yield Record(datetime.fromisoformat(ts) if ts else None, text, labels)


class _CacheWriter:
    """Records written to a temporary file as they stream by, renamed into place only when the slice was read whole."""

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, name = tempfile.mkstemp(dir=target.parent, suffix=".part")
        self.temp = Path(name)
        # Open across the slice's pages, closed by `close`: a with-block cannot span the stream.
        self.handle = gzip.open(os.fdopen(fd, "wb"), "wt", encoding="utf-8", compresslevel=1)  # noqa: SIM115

    def add(self, page: list[Record]) -> None:
        for record in page:
            self.handle.write(json.dumps([record.ts.isoformat() if record.ts else None, record.line, record.labels]) + "\n")

    def close(self, *, keep: bool) -> None:
        self.handle.close()
        if keep:
            os.replace(self.temp, self.target)
            _trim(self.target.parent)
        else:
            self.temp.unlink(missing_ok=True)


def _trim(root: Path) -> None:
    """Files past any TTL out, then the oldest until the cache is within its size."""
    entries = []
    for path in root.glob("*.jsonl.gz"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    now = time.time()
    for mtime, size, path in sorted(entries):
        if total <= CACHE_MAX_BYTES and now - mtime < CACHE_MAX_AGE_S:
            break
        path.unlink(missing_ok=True)
        total -= size
