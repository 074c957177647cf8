"""A local Datadog API: `GET /api/v1/query` (timeseries points) and `GET /api/v1/validate`, with the real shapes.

Series live in memory under the exact query text that returns them. The answer
follows Datadog's: `{"status": "ok", "res_type": "time_series", "series": [{"metric",
"display_name", "scope", "tag_set", "expression", "pointlist": [[epoch ms, value|null]],
"unit": [{...}, null], "interval", "length", "start", "end", "aggr", "query_index",
"attributes"}], "from_date", "to_date", "group_by", "query", "message", "values",
"times"}`; errors are `{"errors": [...]}` with 400/403, and 429 carries the
`X-RateLimit-Limit/Period/Remaining/Reset` headers. Keys come in `DD-API-KEY` and
`DD-APPLICATION-KEY`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer

UNITS: dict[str, dict[str, Any]] = {
    "millisecond": {"family": "time", "scale_factor": 0.001, "name": "millisecond", "short_name": "ms", "plural": "milliseconds", "id": 11},
    "request": {"family": "network", "scale_factor": 1.0, "name": "request", "short_name": "req", "plural": "requests", "id": 19},
    "second": {"family": "time", "scale_factor": 1.0, "name": "second", "short_name": "s", "plural": "seconds", "id": 12},
}


@dataclass
class DatadogSeries:
    metric: str
    tags: list[str]
    # (epoch seconds, value or None)
    points: list[tuple[float, float | None]]
    unit: tuple[str | None, str | None] = (None, None)


@dataclass
class Request:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class DatadogStandin:
    api_key: str = "dd-api-key-standin-0123456789"
    app_key: str = "dd-app-key-standin-0123456789"
    series: dict[str, list[DatadogSeries]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _failures: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="datadog-standin")

    def start(self) -> DatadogStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def add(self, query: str, series: DatadogSeries) -> None:
        self.series.setdefault(query, []).append(series)

    def rate_limit(self, times: int = 1, reset_s: int = 1) -> None:
        headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Period": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_s)}
        self._failures.extend(
            [(429, headers, {"errors": ["Rate limit of 100 requests in 10 seconds reached. Please try again later."]})] * times
        )

    def fail(self, status: int, times: int = 1, errors: list[str] | None = None) -> None:
        self._failures.extend([(status, {}, {"errors": errors or ["Internal Server Error"]})] * times)

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            if self._failures:
                return self._failures.pop(0)
        if request.headers.get("dd-api-key") != self.api_key:
            return 403, {}, {"errors": ["Forbidden"]}
        if request.path == "/api/v1/validate":
            return 200, {}, {"valid": True}
        if request.headers.get("dd-application-key") != self.app_key:
            return 403, {}, {"errors": ["Forbidden"]}
        if request.path != "/api/v1/query":
            return 404, {}, {"errors": ["Not found"]}
        try:
            start, end, query = int(request.params["from"]), int(request.params["to"]), request.params["query"]
        except (KeyError, ValueError):
            return 400, {}, {"errors": ["The value provided for parameter 'from' is invalid"]}
        if query not in self.series and "{" not in query:
            return (
                400,
                {},
                {
                    "errors": [
                        f"Error parsing query: \n unable to parse {query}: Rule 'scope_expr' didn't match at ''"
                        f" (line 1, column {len(query) + 1})."
                    ]
                },
            )
        series = []
        for stored in self.series.get(query, []):
            points = [[at * 1000.0, value] for at, value in sorted(stored.points, key=lambda p: p[0]) if start <= at <= end]
            if not points:
                continue
            series.append(
                {
                    "unit": [UNITS.get(stored.unit[0] or ""), UNITS.get(stored.unit[1] or "")],
                    "query_index": 0,
                    "aggr": "avg",
                    "metric": stored.metric,
                    "tag_set": stored.tags,
                    "expression": f"avg:{stored.metric}{{{','.join(stored.tags) or '*'}}}",
                    "scope": ",".join(stored.tags) or "*",
                    "interval": 60,
                    "length": len(points),
                    "start": int(points[0][0]),
                    "end": int(points[-1][0]),
                    "pointlist": points,
                    "display_name": stored.metric,
                    "attributes": {},
                }
            )
        return (
            200,
            {},
            {
                "status": "ok",
                "resp_version": 1,
                "res_type": "time_series",
                "series": series,
                "from_date": start * 1000,
                "to_date": end * 1000,
                "group_by": [],
                "query": query,
                "message": "",
                "values": [],
                "times": [],
            },
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                request = Request(url.path, params, {k.lower(): v for k, v in self.headers.items()})
                status, headers, body = standin.answer(request)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
