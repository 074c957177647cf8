"""A local New Relic NerdGraph: `POST /graphql` answering NRQL TIMESERIES queries and account look-ups with the real shapes.

Series live in memory under the NRQL text that returns them (without its
SINCE/UNTIL, which the stand-in reads as epoch milliseconds). An answer is
`{"data": {"actor": {"account": {"nrql": {"results": [{"beginTimeSeconds",
"endTimeSeconds", "facet", <facet names>, <aggregate>: value}], "metadata":
{"facets": [...]}}}}}}`; failures come as NerdGraph sends most of them, HTTP 200 with
`errors[]` (`extensions.errorClass`, `message`) and `nrql: null`. The stand-in also
records whether a request pasted the NRQL into the GraphQL document instead of
passing it as a variable (`pasted`).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer

_WINDOW = re.compile(r"^(?P<base>.*?)\s+SINCE\s+(?P<since>\d+)\s+UNTIL\s+(?P<until>\d+)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass
class NrqlSeries:
    """One facet's buckets: (begin epoch seconds, {aggregate: value}); `facet` empty without FACET."""

    facet: tuple[str, ...]
    buckets: list[tuple[float, dict[str, Any]]]


@dataclass
class StoredQuery:
    facets: list[str]
    series: list[NrqlSeries] = field(default_factory=list)


@dataclass
class Request:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class NewRelicStandin:
    api_key: str = "NRAK-STANDIN0123456789ABCDEFGHIJ"
    account_id: int = 1234567
    queries: dict[str, StoredQuery] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    pasted: list[str] = field(default_factory=list)
    _failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="newrelic-standin")

    def start(self) -> NewRelicStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return f"{self._http.base_url}/graphql"

    def add(self, nrql: str, series: NrqlSeries, facets: list[str] | None = None) -> None:
        self.queries.setdefault(nrql, StoredQuery(facets or [])).series.append(series)

    def fail_http(self, status: int, times: int = 1) -> None:
        self._failures.extend([(status, {"errors": [{"message": f"scripted {status}"}]})] * times)

    def fail_graphql(self, error_class: str, message: str, times: int = 1) -> None:
        error = {"message": message, "extensions": {"errorClass": error_class}, "path": ["actor", "account", "nrql"]}
        self._failures.extend([(200, {"data": {"actor": {"account": {"nrql": None}}}, "errors": [error]})] * times)

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            if self._failures:
                return self._failures.pop(0)
        document = str(request.body.get("query") or "")
        variables = request.body.get("variables") or {}
        if request.headers.get("api-key") != self.api_key:
            return 200, {"data": {"actor": None}, "errors": [{"message": "Invalid API key", "extensions": {"errorClass": "UNAUTHORIZED"}}]}
        if variables.get("accountId") != self.account_id:
            return 200, {
                "data": {"actor": {"account": None}},
                "errors": [{"message": "Account not found or not authorized", "extensions": {"errorClass": "FORBIDDEN"}}],
            }
        if "nrql(" not in document:
            return 200, {"data": {"actor": {"account": {"id": self.account_id, "name": "Stand-in account"}}}}
        nrql = str(variables.get("nrql") or "")
        if nrql and nrql in document:
            self.pasted.append(nrql)
        match = _WINDOW.match(nrql)
        stored = self.queries.get(match.group("base")) if match else None
        if match is None or stored is None:
            return 200, {
                "data": {"actor": {"account": {"nrql": None}}},
                "errors": [
                    {
                        "message": f"NRQL Syntax Error: Error at line 1 position 1, unexpected '{nrql[:12]}'",
                        "extensions": {"errorClass": "INVALID_INPUT"},
                        "path": ["actor", "account", "nrql"],
                    }
                ],
            }
        since, until = int(match.group("since")) / 1000, int(match.group("until")) / 1000
        results = []
        for series in stored.series:
            for begin, values in sorted(series.buckets, key=lambda b: b[0]):
                if not since <= begin <= until:
                    continue
                row: dict[str, Any] = {"beginTimeSeconds": int(begin), "endTimeSeconds": int(begin) + 60, **values}
                if stored.facets:
                    row["facet"] = series.facet[0] if len(series.facet) == 1 else list(series.facet)
                    row.update(dict(zip(stored.facets, series.facet, strict=True)))
                results.append(row)
        return 200, {"data": {"actor": {"account": {"nrql": {"results": results, "metadata": {"facets": stored.facets or None}}}}}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                if not self.path.endswith("/graphql"):
                    status, answer = 404, {"errors": [{"message": "Not found"}]}
                else:
                    status, answer = standin.answer(Request({k.lower(): v for k, v in self.headers.items()}, body))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
