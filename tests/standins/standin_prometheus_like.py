"""A local Prometheus HTTP API `/api/v1/query_range` with the real answer shapes, for what a real server cannot script.

Series live in memory under the exact query text that returns them; `fail(status,
times, headers)` scripts 429/5xx answers, `require_token` a bearer token. Answers
follow the server: `{"status": "success", "data": {"resultType": "matrix", "result":
[{"metric": {...}, "values": [[unix, "text"], ...]}]}}`, points at start + k*step,
and `{"status": "error", "errorType": ..., "error": ...}` for failures.
`PrometheusLikeHandler` is reused by the Grafana stand-in under its proxy path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    # Every value of a repeated parameter (Grafana's `tags=a&tags=b`); `form` keeps the last.
    lists: dict[str, list[str]] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass
class StoredSeries:
    labels: dict[str, str]
    points: list[tuple[float, float]]


def ramp(labels: dict[str, str], start: datetime, minutes: int, *, before: float, after: float) -> StoredSeries:
    """One point a minute for `minutes`, stepping from `before` to `after` half-way."""
    points = [((start + timedelta(minutes=i)).timestamp(), before if i < minutes // 2 else after) for i in range(minutes)]
    return StoredSeries(labels, points)


@dataclass
class PrometheusLike:
    """The state behind one API root: series by query, scripted failures, recorded requests."""

    series: dict[str, list[StoredSeries]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    token: str | None = None
    # False: answer with the stored samples in [start, end] as they are, as a store whose resolution is the samples'
    # own (the role contract's data is irregular); True: evaluate at start + k*step with a 5-minute lookback.
    evaluate: bool = True
    _failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, query: str, series: StoredSeries) -> None:
        self.series.setdefault(query, []).append(series)

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        self._failures.extend([(status, headers or {})] * times)

    def require_token(self, token: str) -> None:
        self.token = token

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            if self._failures:
                status, headers = self._failures.pop(0)
                return status, headers, {"status": "error", "errorType": "unavailable", "error": f"scripted {status}"}
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, {"status": "error", "errorType": "unauthorized", "error": "unauthorized"}
        if request.path == "/api/v1/status/buildinfo":
            return 200, {}, {"status": "success", "data": {"version": "2.42.0", "revision": "standin", "branch": "HEAD"}}
        if request.path != "/api/v1/query_range":
            return 404, {}, {"status": "error", "errorType": "not_found", "error": "not found"}
        try:
            start, end, step = (float(request.form[k]) for k in ("start", "end", "step"))
            query = request.form["query"]
        except (KeyError, ValueError):
            return 400, {}, {"status": "error", "errorType": "bad_data", "error": "invalid parameter"}
        if (end - start) / step > 11_000:
            return (
                400,
                {},
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
                },
            )
        if query not in self.series and "(" in query:
            return 400, {}, {"status": "error", "errorType": "bad_data", "error": f"parse error: unexpected end of input in {query!r}"}
        result = []
        for stored in self.series.get(query, []):
            values = (
                self._evaluated(stored, start, end, step)
                if self.evaluate
                else [[t, repr(v)] for t, v in sorted(stored.points) if start <= t <= end]
            )
            if values:
                result.append({"metric": {"__name__": query, **stored.labels}, "values": values})
        return 200, {}, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    @staticmethod
    def _evaluated(stored: StoredSeries, start: float, end: float, step: float) -> list[list[Any]]:
        values: list[list[Any]] = []
        at = start
        while at <= end:
            # The latest sample at or before the instant, within a 5-minute lookback, as Prometheus evaluates.
            seen = [v for t, v in sorted(stored.points) if at - 300 < t <= at]
            if seen:
                values.append([at, repr(seen[-1])])
            at += step
        return values


def handler_for(state: PrometheusLike, prefix: str = "") -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            return None

        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            params.update({k: v[-1] for k, v in parse_qs(raw).items()})
            path = url.path.removeprefix(prefix)
            request = Request(method, path, {k.lower(): v for k, v in self.headers.items()}, params)
            status, headers, body = state.answer(request)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


class PrometheusLikeStandin(PrometheusLike):
    def __init__(self) -> None:
        super().__init__()
        self._http = LoopbackServer(handler_for(self), name="prometheus-standin")

    def start(self) -> PrometheusLikeStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url
