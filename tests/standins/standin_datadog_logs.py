"""A local Datadog log search: `POST /api/v2/logs/events/search` with the real request and answer shapes.

Request: `{"filter": {"from", "to", "query", "indexes"}, "page": {"limit", "cursor"}, "sort"}`,
keys in `DD-API-KEY` and `DD-APPLICATION-KEY`. Answer: `{"data": [{"id", "type": "log",
"attributes": {"timestamp", "status", "service", "host", "message", "tags", "attributes"}}],
"links": {"next"}, "meta": {"elapsed", "page": {"after"}, "request_id", "status": "done"}}`;
the last page has neither `links` nor `meta.page`. A limit above 1000 is a 400, a bad
query a 400 with Datadog's parse error, bad keys a 403, throttling a 429 with the
`X-RateLimit-Limit/Period/Remaining/Reset` headers.

Logs are kept in the order they were sent; a search returns them by timestamp (ties
in that order), as Datadog sorts by time. The query language understood is a small
part of Datadog's: `*`, `key:value` terms (`service`, `status`, `host`, `@attribute`)
and free words, all ANDed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer


@dataclass
class DatadogLog:
    at: datetime
    message: str
    status: str = "info"
    service: str = "checkout"
    host: str = "i-0abc123"
    tags: list[str] = field(default_factory=lambda: ["env:prod"])
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Search:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class DatadogLogsStandin:
    api_key: str = "dd-api-key-standin-0123456789"
    app_key: str = "dd-app-key-standin-0123456789"
    logs: list[DatadogLog] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    # Seconds each answer waits from the `slow_after`-th search on (a store under load).
    delay_s: float = 0.0
    slow_after: int = 0
    # Searches answered with `meta.status: "timeout"`: Datadog ran out of time and the page may lack logs.
    timed_out: int = 0
    # After the stored logs, every later page is filler stamped at the search's end: more than a test could read.
    endless: bool = False
    _failures: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="datadog-logs-standin")

    def start(self) -> DatadogLogsStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def rate_limit(self, times: int = 1, reset_s: int = 1) -> None:
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Period": "3600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset_s),
        }
        self._failures.extend([(429, headers, {"errors": ["Too many requests"]})] * times)

    def fail(self, status: int, times: int = 1) -> None:
        self._failures.extend([(status, {}, {"errors": ["Internal Server Error"]})] * times)

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.searches.append(Search(body, headers))
            count = len(self.searches)
            failure = self._failures.pop(0) if self._failures else None
        if self.delay_s and count >= self.slow_after:
            time.sleep(self.delay_s)
        if failure is not None:
            return failure
        # A proxy may put the API under a prefix of its own.
        if not path.endswith("/api/v2/logs/events/search"):
            return 404, {}, {"errors": ["Not found"]}
        if headers.get("dd-api-key") != self.api_key or headers.get("dd-application-key") != self.app_key:
            return 403, {}, {"errors": ["Forbidden"]}
        query = body.get("filter") or {}
        page = body.get("page") or {}
        limit = int(page.get("limit", 10))
        if limit > 1000:
            return 400, {}, {"errors": ["page[limit] must be <= 1000"]}
        text = str(query.get("query", "*"))
        if text.count("(") != text.count(")"):
            return 400, {}, {"errors": [f"Invalid query: {text!r}: unbalanced parentheses"]}
        try:
            start, end = _time(query["from"]), _time(query["to"])
        except (KeyError, ValueError):
            return 400, {}, {"errors": ["Invalid time range: from and to must be ISO-8601 times"]}
        offset = int(base64.urlsafe_b64decode(page["cursor"]).decode()) if page.get("cursor") else 0
        chosen = sorted(
            (log for log in self.logs if start <= log.at <= end and _matches(log, text)),
            key=lambda log: log.at,
            reverse=body.get("sort") == "-timestamp",
        )
        items = [_item(log) for log in chosen[offset : offset + limit]]
        more = offset + limit < len(chosen)
        if self.endless and len(items) < limit:
            items += [_item(DatadogLog(end, f"filler {offset + i}")) for i in range(limit - len(items))]
            more = True
        with self._lock:
            timed_out, self.timed_out = self.timed_out > 0, max(0, self.timed_out - 1)
        meta: dict[str, Any] = {"elapsed": 12, "request_id": uuid.uuid4().hex, "status": "timeout" if timed_out else "done"}
        answer: dict[str, Any] = {"data": items, "meta": meta}
        if more:
            after = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
            meta["page"] = {"after": after}
            answer["links"] = {"next": f"{self.url}/api/v2/logs/events?page%5Bcursor%5D={after}"}
        return 200, {}, answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, answer = standin.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up on a slow answer.
                    return

        return Handler


def _time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def _matches(log: DatadogLog, query: str) -> bool:
    for term in query.split():
        if term == "*":
            continue
        key, sep, value = term.partition(":")
        if not sep:
            if term.lower() not in log.message.lower():
                return False
        elif key.startswith("@"):
            if str(log.attributes.get(key[1:])) != value:
                return False
        elif key in ("service", "status", "host"):
            if getattr(log, key) != value:
                return False
        elif term not in log.tags:
            return False
    return True


def _item(log: DatadogLog) -> dict[str, Any]:
    return {
        "id": "AQAAAZ" + uuid.uuid4().hex,
        "type": "log",
        "attributes": {
            "timestamp": log.at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "status": log.status,
            "service": log.service,
            "host": log.host,
            "message": log.message,
            "tags": [*log.tags, f"service:{log.service}", f"host:{log.host}"],
            "attributes": log.attributes,
        },
    }
