"""A local Log Analytics query API: `POST /v1/workspaces/{id}/query` with the real request, tables, partial results and errors.

Request: `{"query": KQL, "timespan": "start/end"}` (ISO 8601, end excluded), `Prefer: wait=N`
for the server timeout, `Authorization: Bearer <token>`. Answer: `{"tables": [{"name":
"PrimaryResult", "columns": [{"name", "type"}], "rows": [[...]]}]}`; a partial one adds
`"error": {"code": "PartialError", "message", "details": [{"code", "message", "innererror"}]}`.
Errors are `{"error": {"code", "message", "innererror"?}}`: 400 for KQL that does not parse,
403 InsufficientAccessError, 401 for a bad token, 429 ThrottledError with `Retry-After`.

The KQL understood is a small part of the language: a table, then `where Col == "v"`,
`where Col >= datetime(...)`, `order by Col asc|desc` and `take N` stages.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer

COLUMNS = [
    ("TimeGenerated", "datetime"),
    ("LogMessage", "dynamic"),
    ("LogLevel", "string"),
    ("PodName", "string"),
    ("ContainerName", "string"),
    ("Computer", "string"),
]
_WHERE_EQ = re.compile(r'^where\s+(\w+)\s*==\s*"([^"]*)"$')
_WHERE_SINCE = re.compile(r"^where\s+(\w+)\s*>=\s*datetime\(([^)]+)\)$")
_ORDER = re.compile(r"^order\s+by\s+(\w+)\s+(asc|desc)$")
_TAKE = re.compile(r"^take\s+(\d+)$")


@dataclass
class Query:
    workspace: str
    body: dict[str, Any]
    prefer: str
    authorization: str


@dataclass
class LogAnalyticsStandin:
    token: str = "la-token-standin-0123456789"
    workspace_id: str = "6f4c1e4e-8f6a-4a4e-9a57-2d0d6b6c1f01"
    # Rows of the ContainerLogV2 table, as dicts by column name.
    rows: list[dict[str, Any]] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    denied: bool = False
    # Past this many rows an answer is cut and marked partial, as past Log Analytics' result limits.
    row_limit: int | None = None
    delay_s: float = 0.0
    slow_after: int = 0
    _failures: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="log-analytics-standin")

    def start(self) -> LogAnalyticsStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def throttle(self, times: int = 1, retry_after_s: int = 1) -> None:
        body = {"error": {"code": "ThrottledError", "message": "Your request was throttled. Please retry after a short delay."}}
        self._failures.extend([(429, {"Retry-After": str(retry_after_s)}, body)] * times)

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        match = re.fullmatch(r"/v1/workspaces/([^/]+)/query", path.split("?")[0])
        with self._lock:
            self.queries.append(Query(match.group(1) if match else "", body, headers.get("prefer", ""), headers.get("authorization", "")))
            count = len(self.queries)
            failure = self._failures.pop(0) if self._failures else None
        if self.delay_s and count >= self.slow_after:
            time.sleep(self.delay_s)
        if failure is not None:
            return failure
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, {"error": {"code": "AuthorizationRequiredError", "message": "Valid authentication was not provided"}}
        if match is None or match.group(1) != self.workspace_id:
            return 404, {}, {"error": {"code": "WorkspaceNotFoundError", "message": f"The workspace could not be found: {path}"}}
        if self.denied:
            message = "The provided credentials have insufficient access to perform the requested operation"
            return 403, {}, {"error": {"code": "InsufficientAccessError", "message": message}}
        try:
            rows = self._run(str(body.get("query", "")), str(body.get("timespan", "")))
        except ValueError as exc:
            error = {
                "code": "BadArgumentError",
                "message": "The request had some invalid properties",
                "innererror": {"code": "SyntaxError", "message": str(exc)},
            }
            return 400, {}, {"error": error}
        answer: dict[str, Any] = {}
        if self.row_limit is not None and len(rows) > self.row_limit:
            rows = rows[: self.row_limit]
            inner = {
                "code": "EngineError",
                "message": "Query result set has exceeded the internal record count limit",
                "innererror": {"code": "E_QUERY_RESULT_SET_TOO_LARGE"},
            }
            answer["error"] = {"code": "PartialError", "message": "There were some errors when processing your query.", "details": [inner]}
        table = {
            "name": "PrimaryResult",
            "columns": [{"name": n, "type": t} for n, t in COLUMNS],
            "rows": [[_cell(row.get(n), t) for n, t in COLUMNS] for row in rows],
        }
        return 200, {}, {"tables": [table], **answer}

    def _run(self, query: str, timespan: str) -> list[dict[str, Any]]:
        stages = [stage.strip() for stage in query.split("|")]
        if stages[0] != "ContainerLogV2":
            raise ValueError(f"'{stages[0]}' is not a table of this workspace")
        first, _, last = timespan.partition("/")
        start, end = _time(first), _time(last)
        rows = [r for r in self.rows if start <= r["TimeGenerated"] < end]
        for stage in stages[1:]:
            if m := _WHERE_EQ.match(stage):
                rows = [r for r in rows if str(r.get(m.group(1))) == m.group(2)]
            elif m := _WHERE_SINCE.match(stage):
                rows = [r for r in rows if r[m.group(1)] >= _time(m.group(2))]
            elif m := _ORDER.match(stage):
                rows = sorted(rows, key=lambda r, c=m.group(1): r[c], reverse=m.group(2) == "desc")
            elif m := _TAKE.match(stage):
                rows = rows[: int(m.group(1))]
            else:
                raise ValueError(f"A recognition error occurred in the query: {stage!r}")
        return rows

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, headers, answer = standin.answer(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(self.rfile.read(length) or b"{}")
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler


def _time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).astimezone(UTC)


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == "dynamic":
        return value if isinstance(value, str) else json.dumps(value)
    return value
