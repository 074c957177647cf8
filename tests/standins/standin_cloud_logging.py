"""A local Cloud Logging API: `POST /v2/entries:list` with the real request, entries, paging and errors.

Request: `{"resourceNames": ["projects/p"], "filter", "orderBy": "timestamp asc"|"timestamp desc",
"pageSize", "pageToken"}`. Answer: `{"entries": [LogEntry], "nextPageToken"}`, a LogEntry being
`{"logName", "resource": {"type", "labels"}, "timestamp", "receiveTimestamp", "severity",
"insertId", "labels", "trace", "httpRequest", "textPayload" | "jsonPayload"}`. Errors are
`{"error": {"code", "message", "status"}}`: 400 INVALID_ARGUMENT for a filter that does not
parse, 403 PERMISSION_DENIED for a project the caller may not read, 429 RESOURCE_EXHAUSTED
for the read quota (Cloud Logging sends no Retry-After), 503 UNAVAILABLE.

The filter language understood is a small part of Cloud Logging's: terms joined by `AND`
(parentheses around the whole catalog filter allowed), each `field op value` with `=`, `>=`,
`<=`, `>`, `<` on `timestamp`, `severity`, `resource.type`, `resource.labels.*`, `labels.*`,
`logName` and `jsonPayload.*`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer

SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]
_TERM = re.compile(r'^\s*([A-Za-z_][\w.]*)\s*(>=|<=|=|>|<)\s*"?([^"]*)"?\s*$')


@dataclass
class CloudEntry:
    at: datetime
    text: str | None = None
    json_payload: dict[str, Any] | None = None
    severity: str = "DEFAULT"
    labels: dict[str, str] = field(default_factory=dict)
    resource_type: str = "k8s_container"
    resource_labels: dict[str, str] = field(
        default_factory=lambda: {
            "project_id": "shop-prod",
            "cluster_name": "prod",
            "namespace_name": "shop",
            "pod_name": "checkout-7d9f",
            "container_name": "app",
        }
    )
    log_name: str = "projects/shop-prod/logs/stdout"
    trace: str | None = None
    http_request: dict[str, Any] | None = None
    insert_id: str = ""


@dataclass
class CloudLoggingStandin:
    entries: list[CloudEntry] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    denied_projects: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    slow_after: int = 0
    endless: bool = False
    _failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="cloud-logging-standin")

    def start(self) -> CloudLoggingStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def quota_exceeded(self, times: int = 1) -> None:
        message = (
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service "
            "'logging.googleapis.com' for consumer 'project_number:123456789'."
        )
        self._failures.extend([(429, {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}})] * times)

    def unavailable(self, times: int = 1) -> None:
        self._failures.extend(
            [(503, {"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}})] * times
        )

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            count = len(self.requests)
            failure = self._failures.pop(0) if self._failures else None
        if self.delay_s and count >= self.slow_after:
            time.sleep(self.delay_s)
        if failure is not None:
            return failure
        if path != "/v2/entries:list":
            return 404, {"error": {"code": 404, "message": f"Method not found: {path}", "status": "NOT_FOUND"}}
        projects = [name.removeprefix("projects/") for name in body.get("resourceNames") or []]
        if any(p in self.denied_projects for p in projects):
            message = f"The caller does not have permission to read logs of project {projects[0]}"
            return 403, {"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}}
        try:
            terms = _terms(str(body.get("filter") or ""))
        except ValueError as exc:
            return 400, {"error": {"code": 400, "message": f"Invalid filter: {exc}", "status": "INVALID_ARGUMENT"}}
        size = min(int(body.get("pageSize") or 50), 1000)
        offset = int(base64.b64decode(body["pageToken"]).decode()) if body.get("pageToken") else 0
        # Each entry's insertId is its place in the store: the same entry keeps it in every listing.
        chosen = sorted(
            ((i, e) for i, e in enumerate(self.entries) if all(_holds(e, *t) for t in terms)),
            key=lambda pair: pair[1].at,
            reverse=body.get("orderBy") == "timestamp desc",
        )
        page = [_resource(e, i) for i, e in chosen[offset : offset + size]]
        answer: dict[str, Any] = {"entries": page} if page else {}
        if offset + size < len(chosen) or self.endless:
            answer["nextPageToken"] = base64.b64encode(str(offset + size).encode()).decode()
        if self.endless and not page:
            last = max((e.at for _, e in chosen), default=datetime.now(UTC))
            answer["entries"] = [_resource(CloudEntry(last, text=f"filler {offset + i}"), 10**9 + offset + i) for i in range(size)]
        return 200, answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = standin.answer(self.path.split("?")[0], json.loads(self.rfile.read(length) or b"{}"))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler


def _terms(text: str) -> list[tuple[str, str, str]]:
    terms = []
    for part in re.split(r"\)?\s+AND\s+\(?", text.strip()):
        part = part.strip().removeprefix("(").removesuffix(")")
        if not part:
            continue
        match = _TERM.match(part)
        if match is None:
            raise ValueError(f"unexpected term {part!r}")
        terms.append((match.group(1), match.group(2), match.group(3)))
    return terms


def _value(entry: CloudEntry, name: str) -> Any:
    if name == "timestamp":
        return entry.at
    if name == "severity":
        return SEVERITIES.index(entry.severity)
    if name == "resource.type":
        return entry.resource_type
    if name == "logName":
        return entry.log_name
    for prefix, fields in (
        ("resource.labels.", entry.resource_labels),
        ("labels.", entry.labels),
        ("jsonPayload.", entry.json_payload or {}),
    ):
        if name.startswith(prefix):
            return fields.get(name.removeprefix(prefix))
    raise ValueError(f"unknown field {name}")


def _holds(entry: CloudEntry, name: str, op: str, raw: str) -> bool:
    value = _value(entry, name)
    wanted: Any = raw
    if name == "timestamp":
        wanted = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    elif name == "severity":
        wanted = SEVERITIES.index(raw)
    if value is None:
        return False
    if op == "=":
        return bool(str(value) == str(wanted)) if name not in ("timestamp", "severity") else bool(value == wanted)
    return bool({">=": value >= wanted, "<=": value <= wanted, ">": value > wanted, "<": value < wanted}[op])


def _resource(entry: CloudEntry, index: int) -> dict[str, Any]:
    stamp = entry.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
    resource: dict[str, Any] = {
        "logName": entry.log_name,
        "resource": {"type": entry.resource_type, "labels": entry.resource_labels},
        "timestamp": stamp,
        "receiveTimestamp": stamp,
        "severity": entry.severity,
        "insertId": entry.insert_id or f"{index:016x}",
    }
    if entry.labels:
        resource["labels"] = entry.labels
    if entry.trace:
        resource["trace"] = entry.trace
    if entry.http_request:
        resource["httpRequest"] = entry.http_request
    if entry.json_payload is not None:
        resource["jsonPayload"] = entry.json_payload
    else:
        resource["textPayload"] = entry.text or ""
    return resource
