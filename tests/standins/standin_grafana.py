"""A local Grafana HTTP API: the data source proxy to Prometheus data sources, and data source records.

`/api/datasources/proxy/uid/{uid}/...` forwards to an in-memory Prometheus-like
API per uid (`datasource(uid)` gives it, to add series and script failures), as
Grafana forwards to the real data source; `/api/datasources/uid/{uid}` returns
its record. Grafana's own errors have its shapes: 401 `{"message": "Unauthorized",
"messageId": "auth.unauthorized", "statusCode": 401}` for a bad service account
token, 404 `{"message": "Data source not found"}` for an unknown uid.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from loopback import LoopbackServer
from standin_prometheus_like import PrometheusLike, Request

_PROXY = re.compile(r"^/api/datasources/proxy/uid/([^/]+)(/.*)$")
_RECORD = re.compile(r"^/api/datasources/uid/([^/]+)$")


class GrafanaStandin:
    def __init__(self, *, token: str | None = None) -> None:
        self.token = token
        self.datasources: dict[str, PrometheusLike] = {}
        self.requests: list[Request] = []
        self._http = LoopbackServer(self._handler(), name="grafana-standin")

    def start(self) -> GrafanaStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def datasource(self, uid: str) -> PrometheusLike:
        return self.datasources.setdefault(uid, PrometheusLike())

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.requests.append(request)
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, {"extra": None, "message": "Unauthorized", "messageId": "auth.unauthorized", "statusCode": 401, "traceID": ""}
        if match := _RECORD.match(request.path):
            uid = unquote(match.group(1))
            if uid not in self.datasources:
                return 404, {}, {"message": "Data source not found"}
            return 200, {}, {"id": 1, "uid": uid, "name": f"Prometheus {uid}", "type": "prometheus", "access": "proxy"}
        if match := _PROXY.match(request.path):
            uid = unquote(match.group(1))
            if uid not in self.datasources:
                return 404, {}, {"message": "Data source not found"}
            forwarded = Request(request.method, match.group(2), request.headers, request.form)
            return self.datasources[uid].answer(forwarded)
        return 404, {}, {"message": "Not found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                params.update({k: v[-1] for k, v in parse_qs(raw).items()})
                request = Request(method, url.path, {k.lower(): v for k, v in self.headers.items()}, params)
                status, headers, body = standin.answer(request)
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
