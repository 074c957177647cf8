"""Container logs of a selector's pods as a log store: current and previous instance, each event with its pod.

The API gives one container's log at a time, from `sinceSeconds` on, never a time
range; with `timestamps=True` every line starts with the time the runtime wrote it.
So the window is one slice, read container by container: each stream stops at the
first line written after the window, and `limitBytes` (and, when the window reaches
the present, `tailLines`, which keeps the newest lines) bound what one container
costs. Lines are grouped into records, a stack trace's lines with the line that
announced it, and the store base parses them as it parses files.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from core.timeparse import as_utc
from integrations.errors import SourceError
from integrations.infra.kubernetes import KubernetesLogOptions
from integrations.infra.kubernetes_client import Caller, Cluster, Reader, is_forbidden, select_pods
from integrations.logs.parsing.stacks import looks_like_continuation
from integrations.logs.store import LogStore, Record, Session

T = TypeVar("T")
RECORDS_PER_PAGE = 500
PAGE_WAIT_S = 0.5
# A stack trace longer than this is cut into several records; the parser caps folded lines anyway.
MAX_RECORD_LINES = 400
# The API server's clock and ours may differ: ask for a little more than the window and let the window filter.
CLOCK_SKEW = timedelta(minutes=2)
# A window ending this close to now reaches the present: the newest lines matter most, and `tailLines` keeps them.
PRESENT = timedelta(minutes=5)
TOGETHER = timedelta(seconds=1)
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ?")


class KubernetesLogSource(LogStore):
    kind = "kubernetes"

    def __init__(self, options: KubernetesLogOptions, base_dir: Path, name: str | None = None) -> None:
        self.cluster = Cluster(options, base_dir)
        self.target = options
        super().__init__(options, name)

    def describe(self) -> str:
        return f"container logs of {self.cluster.describe()}"

    def check(self) -> str:
        pods, matched = select_pods(self.cluster, Reader(self.cluster, self.target), self.target.max_pods)
        if not matched:
            raise SourceError(f"{self.cluster.where}: no pods match '{self.target.selector}' in namespace {self.target.namespace}")
        containers = sum(len(self._containers(pod)) for pod in pods)
        return f"{matched} pods match '{self.target.selector}' in namespace {self.target.namespace}, {containers} container logs to read"

    def slices(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The whole window as one slice: the API cannot read a time range, only a container's log since a moment."""
        self.begin(start, end)
        return [(as_utc(start), as_utc(end))]

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        def call(fn: Callable[[float], T], *, what: str, verb: str, resource: str) -> T:
            return session.call(lambda: self.cluster.once(fn, session.timeout(), what=what, verb=verb, resource=resource), what)

        def call_log(fn: Callable[[float], T], *, what: str, verb: str, resource: str) -> T:
            once = partial(self.cluster.once, fn, what=what, verb=verb, resource=resource, patient=False)
            return session.call(lambda: once(session.timeout()), what)

        now = datetime.now(UTC)
        pods, _ = select_pods(self.cluster, call, self.target.max_pods)
        read, failed = 0, []
        for pod in pods:
            for container, previous in self._containers(pod):
                where = f"{pod.metadata.name}/{container}" + (" (previous)" if previous else "")
                try:
                    page: list[Record] = []
                    flushed = time.monotonic()
                    for record in self._records(call_log, pod.metadata.name, container, previous, start, end, now):
                        page.append(record)
                        # A slow stream still hands over what it gave: the reader must not wait for a full page.
                        if len(page) >= RECORDS_PER_PAGE or time.monotonic() - flushed > PAGE_WAIT_S:
                            yield page
                            page, flushed = [], time.monotonic()
                    if page:
                        yield page
                    read += 1
                except SourceError as exc:
                    # RBAC is per namespace: one container refused means every one is.
                    if is_forbidden(exc):
                        raise
                    failed.append(f"{where}: {exc}")
                    self.account.partial.append(failed[-1])
        if failed and not read:
            raise SourceError(f"no container log could be read; first: {failed[0]}")

    def _containers(self, pod: Any) -> list[tuple[str, bool]]:
        """(container, previous) pairs whose logs exist: previous first, it is the older."""
        status = pod.status
        if status is None:
            return []
        wanted = self.target.containers
        chosen: list[tuple[str, bool]] = []
        statuses = [(c, False) for c in status.container_statuses or ()] + [(c, True) for c in status.init_container_statuses or ()]
        for container, init in statuses:
            if wanted is not None and container.name not in wanted:
                continue
            state, last = container.state, container.last_state
            last_run = last.terminated if last else None
            if init and not _failed(container):
                continue
            if self.target.previous and (container.restart_count or last_run is not None):
                chosen.append((container.name, True))
            if (state and (state.running or state.terminated)) or last_run is not None:
                chosen.append((container.name, False))
        return chosen

    def _records(
        self, call: Caller, pod: str, container: str, previous: bool, start: datetime, end: datetime, now: datetime
    ) -> Iterator[Record]:
        import urllib3

        core = self.cluster.core()
        query: dict[str, Any] = {
            "container": container,
            "previous": previous,
            "timestamps": True,
            "since_seconds": max(1, math.ceil((now - as_utc(start) + CLOCK_SKEW).total_seconds())),
            "limit_bytes": self.target.log_bytes_per_container,
            "_preload_content": False,
        }
        if as_utc(end) >= now - PRESENT:
            query["tail_lines"] = self.target.tail_lines
        what = f"reading the log of {pod}/{container}"
        response = call(
            lambda timeout: core.read_namespaced_pod_log(pod, self.cluster.namespace, _request_timeout=timeout, **query),
            what=what,
            verb="get",
            resource="pods/log",
        )
        labels = {"pod": pod, "container": container, "namespace": self.cluster.namespace}
        if previous:
            labels["previous"] = "true"
        try:
            yield from records(response, labels, as_utc(end))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SourceError(f"{self.cluster.where}: {what} broke off ({type(exc).__name__})") from None
        finally:
            # Closed, not returned to the pool: a stream left unread would poison the next request on that connection.
            response.close()
            response.release_conn()


def records(lines: Iterable[bytes], labels: dict[str, str], end: datetime) -> Iterator[Record]:
    """One container's log lines as records: a line with the lines that continue it, at the runtime's time of the first.

    Runtime times only grow within one container's log, so the first line written after
    `end` ends the read; a log with a line the runtime did not stamp promises no such
    order and is read to its end (within the byte bound).
    """
    head: datetime | None = None
    last: datetime | None = None
    lines_of: list[str] = []
    ordered = True
    for raw in lines:
        stamp, text = split_stamp(raw.decode("utf-8", "replace").rstrip("\r\n"))
        ordered = ordered and stamp is not None
        if ordered and stamp is not None and stamp > end:
            break
        # The lines of one multi-line write carry the same time, give or take: a later line starts anew.
        together = stamp is None or last is None or stamp - last <= TOGETHER
        if lines_of and len(lines_of) < MAX_RECORD_LINES and together and _continues(text):
            lines_of.append(text)
            last = stamp or last
            continue
        if lines_of:
            yield Record(head, "\n".join(lines_of), labels)
        head, last, lines_of = stamp, stamp, [text]
    if lines_of:
        yield Record(head, "\n".join(lines_of), labels)


def split_stamp(line: str) -> tuple[datetime | None, str]:
    """`2026-03-10T11:00:00.123456789Z text` → (that time in UTC, `text`); a line without the runtime's time stays whole."""
    match = _STAMP.match(line)
    if match is None:
        return None, line
    seconds, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    moment = datetime.fromisoformat(f"{seconds}.{micros}{'+00:00' if zone == 'Z' else zone}")
    return moment.astimezone(UTC), line[match.end() :]


def _continues(text: str) -> bool:
    return not text or text[0] in " \t" or looks_like_continuation(text) or text.startswith("Traceback (most recent call last)")


def _failed(container: Any) -> bool:
    """An init container worth reading: it restarted or exited with an error."""
    if container.restart_count:
        return True
    for state in (container.state, container.last_state):
        terminated = state.terminated if state else None
        if terminated is not None and terminated.exit_code:
            return True
    return False
