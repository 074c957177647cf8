"""A local Grafana HTTP API: the data source proxy to Prometheus and Loki data sources, data source records, annotations.

`/api/datasources/proxy/uid/{uid}/...` forwards to an in-memory data source per uid
(`datasource(uid)` a Prometheus-like one, `datasource(uid, "loki")` a Loki-like one, to
add series and script failures), as Grafana forwards to the real data source;
`/api/datasources/uid/{uid}` returns its record. A Loki data source answers
`GET /loki/api/v1/query_range` (times in nanoseconds) with a `matrix` for metric
queries, `streams` for log queries, and plain-text errors as Loki does.
`/api/annotations` answers as Grafana does: newest first, `limit` (default 100),
`from`/`to` in epoch ms overlapping each annotation's [time, timeEnd], `tags` repeated
(all must match, any with `matchAny=true`; a tag `k` matches any `k:v`), `type` and
`dashboardUID`. Grafana's own errors have its shapes: 401 `{"message": "Unauthorized",
"messageId": "auth.unauthorized", "statusCode": 401}` for a bad service account
token, 404 `{"message": "Data source not found"}` for an unknown uid.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from loopback import LoopbackServer
from standin_prometheus_like import PrometheusLike, Request

_PROXY = re.compile(r"^/api/datasources/proxy/uid/([^/]+)(/.*)$")
_RECORD = re.compile(r"^/api/datasources/uid/([^/]+)$")


@dataclass
class LokiLike(PrometheusLike):
    """A Loki data source: the stored series answer metric queries; `log_queries` answer with streams."""

    log_queries: set[str] = field(default_factory=set)

    def answer(self, request: Request) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(request)
            if self._failures:
                status, headers = self._failures.pop(0)
                # Loki's own 429 and 5xx answers are plain text.
                return status, headers, f"scripted {status}: too many outstanding requests\n"
        if request.path != "/loki/api/v1/query_range" or request.method != "GET":
            return 404, {}, "404 page not found\n"
        try:
            start, end = (int(request.form[k]) / 1e9 for k in ("start", "end"))
            step = float(request.form["step"])
            query = request.form["query"]
        except (KeyError, ValueError):
            return 400, {}, "invalid parameter\n"
        if (end - start) / step > 11_000:
            return 400, {}, "exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of the step parameter\n"
        stats = {"summary": {"bytesProcessedPerSecond": 0, "execTime": 0.001}}
        if query in self.log_queries:
            stream = {"stream": {"app": "checkout"}, "values": [[str(int(start * 1e9)), "level=error msg=boom"]]}
            return 200, {}, {"status": "success", "data": {"resultType": "streams", "result": [stream], "stats": stats}}
        if query not in self.series:
            return 400, {}, f"parse error at line 1, col 1: syntax error: unexpected IDENTIFIER in {query!r}\n"
        result = []
        for stored in self.series[query]:
            values = (
                self._evaluated(stored, start, end, step)
                if self.evaluate
                else [[t, repr(v)] for t, v in sorted(stored.points) if start <= t <= end]
            )
            if values:
                result.append({"metric": dict(stored.labels), "values": values})
        return 200, {}, {"status": "success", "data": {"resultType": "matrix", "result": result, "stats": stats}}


@dataclass
class Annotation:
    """One annotation as Grafana stores it; `dashboard_uid` None: an organisation annotation."""

    id: int
    time: datetime
    tags: list[str]
    text: str = ""
    login: str = "admin"
    time_end: datetime | None = None
    dashboard_uid: str | None = None
    kind: str = "annotation"

    def as_json(self) -> dict[str, Any]:
        at = int(self.time.timestamp() * 1000)
        ends = int(self.time_end.timestamp() * 1000) if self.time_end else at
        return {
            "id": self.id,
            "alertId": 0 if self.kind == "annotation" else 7,
            "alertName": "",
            "dashboardId": 12 if self.dashboard_uid else 0,
            "dashboardUID": self.dashboard_uid,
            "panelId": 2 if self.dashboard_uid else 0,
            "userId": 1,
            "newState": "" if self.kind == "annotation" else "alerting",
            "prevState": "",
            "created": at,
            "updated": at,
            "time": at,
            "timeEnd": ends,
            "text": self.text,
            "tags": list(self.tags),
            "login": self.login,
            "email": f"{self.login}@example.com",
            "avatarUrl": "/avatar/46d229b033af06a191ff2267bca9ae56",
            "data": {},
        }


def _tag_matches(wanted: str, tags: list[str]) -> bool:
    # Grafana stores `k:v` tags as key and value; a filter tag without a value matches the key alone.
    key, sep, value = wanted.partition(":")
    for tag in tags:
        tag_key, _, tag_value = tag.partition(":")
        if tag_key.strip() == key.strip() and (not sep or tag_value.strip() == value.strip()):
            return True
    return False


@dataclass
class GrafanaStandin:
    token: str | None = None
    datasources: dict[str, PrometheusLike] = field(default_factory=dict)
    annotations: list[Annotation] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    _failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="grafana-standin")

    def start(self) -> GrafanaStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def datasource(self, uid: str, kind: str = "prometheus") -> PrometheusLike:
        if uid not in self.datasources:
            self.datasources[uid] = LokiLike() if kind == "loki" else PrometheusLike()
        return self.datasources[uid]

    def annotate(self, time: datetime, tags: list[str], **extra: Any) -> Annotation:
        annotation = Annotation(id=len(self.annotations) + 1, time=time, tags=tags, **extra)
        self.annotations.append(annotation)
        return annotation

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Grafana's own endpoints (not the proxied data sources) answer `status` the next `times` times."""
        self._failures.extend([(status, headers or {})] * times)

    def answer(self, request: Request) -> tuple[int, dict[str, str], Any]:
        self.requests.append(request)
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, {"extra": None, "message": "Unauthorized", "messageId": "auth.unauthorized", "statusCode": 401, "traceID": ""}
        if match := _PROXY.match(request.path):
            uid = unquote(match.group(1))
            if uid not in self.datasources:
                return 404, {}, {"message": "Data source not found"}
            forwarded = Request(request.method, match.group(2), request.headers, request.form, request.lists)
            return self.datasources[uid].answer(forwarded)
        with self._lock:
            if self._failures:
                status, headers = self._failures.pop(0)
                return status, headers, {"message": f"scripted {status}", "statusCode": status}
        if match := _RECORD.match(request.path):
            uid = unquote(match.group(1))
            if uid not in self.datasources:
                return 404, {}, {"message": "Data source not found"}
            kind = "loki" if isinstance(self.datasources[uid], LokiLike) else "prometheus"
            return 200, {}, {"id": 1, "uid": uid, "name": f"{kind} {uid}", "type": kind, "access": "proxy"}
        if request.path == "/api/annotations" and request.method == "GET":
            return 200, {}, self._annotations(request)
        return 404, {}, {"message": "Not found"}

    def _annotations(self, request: Request) -> list[dict[str, Any]]:
        form = request.form
        first = int(form.get("from", "0"))
        last = int(form.get("to", str(2**62)))
        limit = int(form.get("limit", "100"))
        wanted = request.lists.get("tags", [])
        match_any = form.get("matchAny", "false") == "true"
        found = []
        for annotation in self.annotations:
            item = annotation.as_json()
            if not (item["time"] <= last and item["timeEnd"] >= first):
                continue
            if form.get("type") and form["type"] != annotation.kind:
                continue
            if form.get("dashboardUID") and form["dashboardUID"] != annotation.dashboard_uid:
                continue
            hits = [_tag_matches(tag, annotation.tags) for tag in wanted]
            if wanted and not (any(hits) if match_any else all(hits)):
                continue
            found.append(item)
        found.sort(key=lambda item: (item["time"], item["id"]), reverse=True)
        return found[:limit]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                lists = parse_qs(url.query)
                params = {k: v[-1] for k, v in lists.items()}
                params.update({k: v[-1] for k, v in parse_qs(raw).items()})
                request = Request(method, url.path, {k.lower(): v for k, v in self.headers.items()}, params, lists)
                status, headers, body = standin.answer(request)
                plain = isinstance(body, str)
                data = body.encode() if plain else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if plain else "application/json")
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
