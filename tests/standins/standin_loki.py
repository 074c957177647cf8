"""A local Loki HTTP API: `GET /loki/api/v1/query_range` for log queries and `GET /loki/api/v1/labels`, with the real shapes.

Streams live in memory as (labels, entries). A log query answers
`{"status": "success", "data": {"resultType": "streams", "result": [{"stream": {...},
"values": [["<ns>", "<line>"], ...]}], "stats": {...}}}`: entries with `start <= ns < end`
(Loki's end is exclusive), the first `limit` of them in the direction asked, grouped
by stream. The LogQL it understands is a stream selector of `=` / `!=` / `=~` matchers
followed by `|=` / `!=` line filters; anything else is a 400 with Loki's plain-text
parse error. A tenant (`X-Scope-OrgID`) sees only its own streams, and a request
without one is refused (401 `no org id`) when the stand-in is multi-tenant. Auth is
basic or bearer, as a gateway in front of Loki checks it; 429 carries `Retry-After`.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_FILTER = re.compile(r'\s*(\|=|!=)\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class Stream:
    labels: dict[str, str]
    # (ns, line), ascending in ns.
    entries: list[tuple[int, str]]
    tenant: str = "fake"


def _flood_line(k: int, _ns: int) -> str:
    return f"flood entry {k}"


@dataclass
class Flood:
    """A generated stream: `count` entries (None: endless), one every `step_ns` from `from_ns` on, made only when a page asks.

    `line(k, ns)` writes the k-th entry; nothing is held in memory, so a stand-in can
    serve millions of entries (the benchmark's remote part) as cheaply as a few.
    """

    labels: dict[str, str]
    from_ns: int
    step_ns: int = 1000
    tenant: str = "fake"
    count: int | None = None
    line: Callable[[int, int], str] = _flood_line

    def entries(self, start: int, end: int, limit: int) -> Iterator[tuple[int, str]]:
        first = max(0, -(-(start - self.from_ns) // self.step_ns))
        last = first + limit if self.count is None else min(first + limit, self.count)
        for k in range(first, last):
            ns = self.from_ns + k * self.step_ns
            if ns >= end:
                return
            yield ns, self.line(k, ns)


@dataclass
class Request:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class LokiStandin:
    # Multi-tenant (auth_enabled: true) when set: requests must name a tenant.
    multi_tenant: bool = False
    token: str | None = None
    basic: tuple[str, str] | None = None
    max_entries: int = 5000
    streams: list[Stream] = field(default_factory=list)
    floods: list[Flood] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    # Seconds each query_range answer waits once `slow_after` answers were given fast.
    delay_s: float = 0.0
    slow_after: int = 0
    _failures: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="loki-standin")

    def start(self) -> LokiStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    @property
    def queries(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/query_range")]

    def push(self, labels: dict[str, str], entries: list[tuple[int, str]], *, tenant: str = "fake") -> None:
        """Entries of one stream, as a push to `/loki/api/v1/push` would store them (sorted by time)."""
        self.streams.append(Stream(dict(labels), sorted(entries, key=lambda e: e[0]), tenant))

    def rate_limit(self, times: int = 1, retry_after_s: int = 1) -> None:
        # Loki's per-tenant limit answer: plain text, as its HTTP handlers write errors.
        message = "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec)"
        self._failures.extend([(429, {"Retry-After": str(retry_after_s)}, message)] * times)

    def fail(self, status: int, times: int = 1, message: str = "internal server error") -> None:
        self._failures.extend([(status, {}, message)] * times)

    def answer(self, request: Request) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
            served = len(self.queries)
        if failure is not None:
            return failure
        refused = self._refusal(request.headers)
        if refused is not None:
            return refused
        tenant = request.headers.get("x-scope-orgid") or ("" if self.multi_tenant else "fake")
        if not tenant:
            return 401, {}, "no org id\n"
        if request.path.endswith("/loki/api/v1/labels"):
            names = sorted({k for s in self.streams if s.tenant == tenant for k in s.labels})
            return 200, {}, {"status": "success", "data": names}
        if not request.path.endswith("/loki/api/v1/query_range"):
            return 404, {}, "404 page not found\n"
        if self.delay_s and served > self.slow_after:
            time.sleep(self.delay_s)
        return self._query_range(request.params, tenant)

    def _refusal(self, headers: dict[str, str]) -> tuple[int, dict[str, str], Any] | None:
        given = headers.get("authorization", "")
        if self.token is not None and given != f"Bearer {self.token}":
            return 401, {}, "Unauthorized\n"
        if self.basic is not None:
            expected = "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            if given != expected:
                return 401, {"WWW-Authenticate": 'Basic realm="loki"'}, "Unauthorized\n"
        return None

    def _query_range(self, params: dict[str, str], tenant: str) -> tuple[int, dict[str, str], Any]:
        try:
            matchers, filters = _parse(params.get("query", ""))
        except ValueError as exc:
            return 400, {}, f"{exc}\n"
        try:
            start, end, limit = int(params["start"]), int(params["end"]), int(params.get("limit", "100"))
        except (KeyError, ValueError):
            return 400, {}, "invalid parameter: start, end and limit must be integers\n"
        if limit > self.max_entries:
            return 400, {}, f"max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {self.max_entries})\n"
        backward = params.get("direction", "backward") == "backward"
        chosen: list[Iterator[tuple[int, int, str]]] = []
        for index, stream in enumerate(self.streams):
            if stream.tenant == tenant and _selected(stream.labels, matchers):
                chosen.append(((ns, index, line) for ns, line in stream.entries if start <= ns < end and _kept(line, filters)))
        for index, flood in enumerate(self.floods, start=len(self.streams)):
            if flood.tenant == tenant and _selected(flood.labels, matchers):
                chosen.append(((ns, index, line) for ns, line in flood.entries(start, end, limit)))
        merged = heapq.merge(*chosen)
        picked = sorted(merged, reverse=True)[:limit] if backward else list(itertools.islice(merged, limit))
        every = [*self.streams, *self.floods]
        grouped: dict[int, list[list[str]]] = {}
        for ns, index, line in picked:
            grouped.setdefault(index, []).append([str(ns), line])
        result = [{"stream": every[index].labels, "values": values} for index, values in grouped.items()]
        stats = {"summary": {"totalEntriesReturned": len(picked), "execTime": 0.001}}
        return 200, {}, {"status": "success", "data": {"resultType": "streams", "result": result, "stats": stats}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return None

            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                request = Request(url.path, params, {k.lower(): v for k, v in self.headers.items()})
                status, headers, body = standin.answer(request)
                text = body if isinstance(body, str) else None
                data = text.encode() if text is not None else _json(body)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if text is not None else "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                # A client that gave up (its timeout) has closed the connection: nothing to answer to.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        return Handler


def _json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _parse(query: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """A stream selector and line filters; ValueError with Loki's parse error otherwise."""
    text = query.strip()
    if not text.startswith("{") or "}" not in text:
        raise ValueError(f"parse error at line 1, col 1: syntax error: unexpected IDENTIFIER, expecting {{ (query: {query!r})")
    selector, rest = text[1:].split("}", 1)
    matchers = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        found = _MATCHER.fullmatch(part)
        if found is None:
            raise ValueError(f"parse error at line 1, col 2: syntax error: unexpected {part!r}")
        matchers.append((found[1], found[2], found[3]))
    if not any(op in ("=", "=~") for _, op, _ in matchers):
        raise ValueError(
            "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value."
        )
    filters = []
    at = 0
    while at < len(rest):
        if not rest[at:].strip():
            break
        found = _FILTER.match(rest, at)
        if found is None:
            raise ValueError(f"parse error at line 1, col {len(selector) + at + 3}: syntax error: unexpected {rest[at:].strip()[:20]!r}")
        filters.append((found[1], found[2]))
        at = found.end()
    return matchers, filters


def _selected(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


def _kept(line: str, filters: list[tuple[str, str]]) -> bool:
    return all((text in line) == (op == "|=") for op, text in filters)
