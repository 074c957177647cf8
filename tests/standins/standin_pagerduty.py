"""A local PagerDuty REST API v2 over https: incidents, their alerts, log entries and notes, with the real shapes.

`GET /incidents/{id}` also takes the incident number, as PagerDuty does. Index
endpoints use classic pagination: `limit`/`offset` in, `limit`, `offset`,
`more`, `total` (only with `total=true`, else null) out. Auth is
`Authorization: Token token=...` (401 otherwise); writes need a `From` header
naming a user's e-mail (400 without, like PagerDuty's "Requester User Not Found").
`rate_limit(times, ...)` answers 429 with `Retry-After` or `ratelimit-reset`,
like PagerDuty's REST rate limiter. Errors are `{"error": {"message", "code", "errors"}}`.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer
from tls import LoopbackCert

MAX_LIMIT = 100


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PagerDutyStandin:
    cert: LoopbackCert
    token: str = "pd-standin-token-0123456789"
    users: tuple[str, ...] = ("oncall@example.com",)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    log_entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    # (path suffix the failure is for, or "" for any; status, headers, body)
    _failures: list[tuple[str, int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="pagerduty-standin", tls=self.cert.server_context())

    def start(self) -> PagerDutyStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def add_incident(
        self,
        incident_id: str,
        *,
        number: int,
        title: str,
        service: tuple[str, str],
        urgency: str = "high",
        priority: str | None = "P1",
        assignees: tuple[str, ...] = ("Ada Lovelace",),
        created_at: str = "2026-12-06T02:40:00Z",
    ) -> dict[str, Any]:
        base = self._http.base_url
        incident = {
            "id": incident_id,
            "type": "incident",
            "summary": f"[#{number}] {title}",
            "self": f"{base}/incidents/{incident_id}",
            "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
            "incident_number": number,
            "title": title,
            "created_at": created_at,
            "updated_at": created_at,
            "status": "triggered",
            "incident_key": f"key-{incident_id}",
            "service": {"id": service[0], "type": "service_reference", "summary": service[1], "self": f"{base}/services/{service[0]}"},
            "assignments": [
                {"at": created_at, "assignee": {"id": f"PU{i}", "type": "user_reference", "summary": who}}
                for i, who in enumerate(assignees)
            ],
            "urgency": urgency,
            "priority": {"id": "PPRIO1", "type": "priority", "summary": priority, "name": priority} if priority else None,
            "escalation_policy": {"id": "PEP1", "type": "escalation_policy_reference", "summary": "Default"},
            "alert_counts": {"all": 0, "triggered": 0, "resolved": 0},
        }
        self.incidents[incident_id] = incident
        return incident

    def add_alert(self, incident_id: str, *, details: dict[str, Any] | str, cef: dict[str, Any] | None = None) -> None:
        n = next(self._ids)
        alerts = self.alerts.setdefault(incident_id, [])
        alerts.append(
            {
                "id": f"PALERT{n}",
                "type": "alert",
                "summary": f"alert {n}",
                "created_at": _now(),
                "status": "triggered",
                "alert_key": f"alert-key-{n}",
                "incident": {"id": incident_id, "type": "incident_reference"},
                "body": {
                    "type": "alert_body",
                    "contexts": [],
                    "details": details,
                    "cef_details": {"contexts": [], "details": details if isinstance(details, dict) else {}, **(cef or {})},
                },
            }
        )
        self.incidents[incident_id]["alert_counts"]["all"] = len(alerts)

    def add_log_entry(self, incident_id: str, kind: str, summary: str, created_at: str) -> None:
        n = next(self._ids)
        self.log_entries.setdefault(incident_id, []).append(
            {
                "id": f"PLOG{n}",
                "type": f"{kind}_log_entry",
                "summary": summary,
                "created_at": created_at,
                "agent": {"id": "PAGENT", "type": "service_reference", "summary": "checkout"},
                "channel": {"type": "api" if kind == "trigger" else "website"},
                "incident": {"id": incident_id, "type": "incident_reference"},
            }
        )

    def rate_limit(self, times: int = 1, *, retry_after: float | None = None, reset_s: float | None = 1, path_suffix: str = "") -> None:
        """The next `times` requests (to paths ending in `path_suffix`) answer 429."""
        headers = {"ratelimit-limit": "960", "ratelimit-remaining": "0"}
        if reset_s is not None:
            headers["ratelimit-reset"] = f"{reset_s:g}"
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        self._failures.extend([(path_suffix, 429, headers, {"error": {"message": "Rate Limit Exceeded", "code": 2020}})] * times)

    def fail(self, status: int, times: int = 1, path_suffix: str = "") -> None:
        self._failures.extend([(path_suffix, status, {}, {"error": {"message": "Internal Server Error", "code": 2000}})] * times)

    def added_notes(self, incident_id: str) -> list[dict[str, Any]]:
        return list(self.notes.get(incident_id, []))

    def calls(self, method: str, path_part: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    # answering ----------------------------------------------------------------

    def _incident(self, key: str) -> dict[str, Any] | None:
        if key in self.incidents:
            return self.incidents[key]
        return next((i for i in self.incidents.values() if str(i["incident_number"]) == key), None)

    def _page(self, wrapper: str, items: list[dict[str, Any]], params: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        try:
            limit = min(int(params.get("limit", 25)), MAX_LIMIT)
            offset = int(params.get("offset", 0))
        except ValueError:
            return 400, {}, {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Offset must be an integer"]}}
        page = items[offset : offset + limit]
        total = len(items) if params.get("total") == "true" else None
        return 200, {}, {wrapper: page, "limit": limit, "offset": offset, "more": offset + limit < len(items), "total": total}

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            for n, (suffix, status, headers, body) in enumerate(self._failures):
                if request.path.endswith(suffix):
                    del self._failures[n]
                    return status, headers, body
        if request.headers.get("authorization") != f"Token token={self.token}":
            return 401, {}, {"error": {"message": "Unauthorized", "code": 2006}}
        parts = request.path.strip("/").split("/")
        if not parts or parts[0] != "incidents" or len(parts) < 2:
            return 404, {}, {"error": {"message": "Not Found", "code": 2100}}
        incident = self._incident(parts[1])
        if incident is None:
            return 404, {}, {"error": {"message": "Incident Not Found", "code": 5001}}
        incident_id = incident["id"]
        if request.method == "GET" and len(parts) == 2:
            return 200, {}, {"incident": incident}
        if request.method == "GET" and parts[2:] == ["alerts"]:
            return self._page("alerts", self.alerts.get(incident_id, []), request.params)
        if request.method == "GET" and parts[2:] == ["log_entries"]:
            return self._page("log_entries", self.log_entries.get(incident_id, []), request.params)
        if request.method == "GET" and parts[2:] == ["notes"]:
            return 200, {}, {"notes": self.notes.get(incident_id, [])}
        if request.method == "POST" and parts[2:] == ["notes"]:
            sender = request.headers.get("from")
            if sender not in self.users:
                return 400, {}, {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Requester User Not Found"]}}
            content = ((request.body or {}).get("note") or {}).get("content")
            if not content:
                return 400, {}, {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Note content can't be blank"]}}
            note = {
                "id": f"PNOTE{next(self._ids)}",
                "user": {"id": "PU0", "type": "user_reference", "summary": sender},
                "channel": {"summary": "The PagerDuty website or APIs"},
                "content": content,
                "created_at": _now(),
            }
            with self._lock:
                self.notes.setdefault(incident_id, []).append(note)
            return 201, {}, {"note": note}
        return 404, {}, {"error": {"message": "Not Found", "code": 2100}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = Request(method, url.path, params, {k.lower(): v for k, v in self.headers.items()}, body)
                status, headers, payload = standin.answer(request)
                data = json.dumps(payload).encode()
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
