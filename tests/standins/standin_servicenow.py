"""A local ServiceNow Table API: `incident`, `cmdb_ci`, `sys_user_group` and `sys_journal_field`, with the real shapes.

`GET /api/now/table/{table}` answers `{"result": [...]}` with `X-Total-Count` and
a `Link` header (`first`, `prev`, `next`, `last`, each a full URL carrying
`sysparm_offset`); `sysparm_query` understands `field=value`, `fieldLIKEtext` and
`^` (and). With `sysparm_display_value=false` reference fields are
`{"link", "value"}` and times are UTC `YYYY-MM-DD HH:MM:SS`; dot-walked fields
(`cmdb_ci.name`) come as flat keys. `PATCH /api/now/table/incident/{sys_id}` with
`work_notes` adds a journal entry; `POST /api/now/table/incident` files one (201).
Auth: basic or `Authorization: Bearer`; 401 answers `{"error": {"message", "detail"}, "status": "failure"}`;
`rate_limit` answers 429 with `Retry-After` and `X-RateLimit-*`.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from loopback import LoopbackServer

UNAUTHENTICATED = {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"}
NO_RECORD = {
    "error": {"message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval"},
    "status": "failure",
}
REFERENCES = {"cmdb_ci": "cmdb_ci", "assignment_group": "sys_user_group", "assigned_to": "sys_user"}


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _matches(row: dict[str, Any], query: str) -> bool:
    for term in filter(None, query.split("^")):
        if "LIKE" in term:
            name, _, text = term.partition("LIKE")
            if text.lower() not in str(row.get(name, "")).lower():
                return False
        else:
            name, _, value = term.partition("=")
            if str(row.get(name, "")) != value:
                return False
    return True


@dataclass
class ServiceNowStandin:
    user: str = "responder"
    password: str = "sn-standin-password"
    token: str = "sn-standin-token-0123456789"
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _failures: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(10100))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="servicenow-standin")

    def start(self) -> ServiceNowStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def add(self, table: str, **fields: Any) -> dict[str, Any]:
        row = {"sys_id": uuid.uuid4().hex, "sys_created_on": _now(), **fields}
        self.tables.setdefault(table, []).append(row)
        return row

    def add_incident(self, number: str, *, short_description: str, ci: str, group: str, opened_at: str) -> dict[str, Any]:
        ci_row = self.add("cmdb_ci", name=ci)
        group_row = self.add("sys_user_group", name=group)
        return self.add(
            "incident",
            number=number,
            short_description=short_description,
            description="",
            opened_at=opened_at,
            urgency="1",
            priority="2",
            state="2",
            cmdb_ci=ci_row["sys_id"],
            assignment_group=group_row["sys_id"],
            assigned_to="",
            correlation_id="",
        )

    def work_notes(self, sys_id: str) -> list[str]:
        return [r["value"] for r in self.tables.get("sys_journal_field", []) if r["element_id"] == sys_id and r["element"] == "work_notes"]

    def rate_limit(self, times: int = 1, retry_after: float = 1) -> None:
        headers = {"Retry-After": f"{retry_after:g}", "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"}
        self._failures.extend([(429, headers, {"error": {"message": "Rate limit exceeded", "detail": ""}, "status": "failure"})] * times)

    def calls(self, method: str, path_part: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    # answering ----------------------------------------------------------------

    def _authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth == f"Bearer {self.token}":
            return True
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return auth == f"Basic {expected}"

    def _shape(self, row: dict[str, Any], fields: str | None) -> dict[str, Any]:
        names = [f for f in (fields or "").split(",") if f] or list(row)
        out: dict[str, Any] = {}
        for name in names:
            if "." in name:
                ref, _, inner = name.partition(".")
                table = REFERENCES.get(ref)
                target = next((r for r in self.tables.get(table or "", []) if r["sys_id"] == row.get(ref)), None)
                out[name] = str(target.get(inner, "")) if target else ""
            elif name in REFERENCES and row.get(name):
                out[name] = {"link": f"{self.url}/api/now/table/{REFERENCES[name]}/{row[name]}", "value": row[name]}
            else:
                out[name] = row.get(name, "")
        return out

    def _list(self, table: str, params: dict[str, str], path: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        rows = [r for r in self.tables.get(table, []) if _matches(r, params.get("sysparm_query", ""))]
        limit = int(params.get("sysparm_limit") or 10000)
        offset = int(params.get("sysparm_offset") or 0)
        page = rows[offset : offset + limit]

        def link(at: int, rel: str) -> str:
            return f'<{self.url}{path}?{urlencode({**params, "sysparm_offset": str(at), "sysparm_limit": str(limit)})}>;rel="{rel}"'

        links = [link(0, "first")]
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        if offset + limit < len(rows):
            links.append(link(offset + limit, "next"))
        links.append(link(max(0, (len(rows) - 1) // limit * limit), "last"))
        headers = {"X-Total-Count": str(len(rows)), "Link": ",".join(links)}
        return 200, headers, {"result": [self._shape(r, params.get("sysparm_fields")) for r in page]}

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            if self._failures:
                return self._failures.pop(0)
        if not self._authorized(request.headers):
            return 401, {}, UNAUTHENTICATED
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["api", "now", "table"] or len(parts) < 4:
            return 400, {}, {"error": {"message": "Requested URI does not represent any resource", "detail": None}, "status": "failure"}
        table = parts[3]
        if request.method == "GET" and len(parts) == 4:
            return self._list(table, request.params, request.path)
        with self._lock:
            if request.method == "POST" and len(parts) == 4:
                fields = dict(request.body or {})
                notes = fields.pop("work_notes", None)
                row = self.add(table, number=f"INC{next(self._numbers):07d}", opened_at=_now(), **fields)
                if notes:
                    self.add("sys_journal_field", element_id=row["sys_id"], element="work_notes", name=table, value=notes)
                return 201, {}, {"result": self._shape(row, None)}
            if request.method == "PATCH" and len(parts) == 5:
                row = next((r for r in self.tables.get(table, []) if r["sys_id"] == parts[4]), None)
                if row is None:
                    return 404, {}, NO_RECORD
                fields = dict(request.body or {})
                notes = fields.pop("work_notes", None)
                row.update(fields)
                if notes:
                    self.add("sys_journal_field", element_id=row["sys_id"], element="work_notes", name=table, value=notes)
                return 200, {}, {"result": self._shape(row, None)}
        return 405, {}, {"error": {"message": "Method not Supported", "detail": None}, "status": "failure"}

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
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

        return Handler
