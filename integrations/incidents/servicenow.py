"""ServiceNow's Table API through httpx: read an incident by number, add a work note, file an incident.

Reads ask for `sysparm_display_value=false`, so times come in the instance's
internal form (UTC) rather than the user's time zone, and reference fields are
sys_ids; the names of the CI and the group come dot-walked in the same call.
An incident this responder filed carries the investigation's marker in
`correlation_id`, a work note carries it in its text: a retried job finds
what a failed attempt already wrote instead of writing it twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from core.alert import INCIDENT_TOOLS
from core.settings import Settings
from integrations.errors import SourceError
from integrations.incidents.base import Capability, IncidentFacts, NewTicket, Note, TicketRef, TrackerError
from integrations.remote_calls import Deadline, RetryableError, with_retries

log = structlog.get_logger(__name__)

LABEL = "ServiceNow"
CAPABILITIES = frozenset({Capability.read, Capability.note, Capability.create})
INCIDENT_NUMBER = re.compile(r"\bINC\d{7,}\b")
FIELDS = (
    "sys_id,number,short_description,description,opened_at,urgency,priority,state,"
    "cmdb_ci,cmdb_ci.name,assignment_group,assignment_group.name,assigned_to.name"
)
PAGE_SIZE = 100
MAX_PAGES = 10
REQUEST_TIMEOUT_S = 10.0
RETRIES = 3
WRITE_DEADLINE_S = 30.0
URGENCY_BY_ALERT = {"high": "1", "low": "3"}
SN_TIME = "%Y-%m-%d %H:%M:%S"


def from_settings(settings: Settings) -> ServiceNowTool | None:
    """The tool, or None unless SERVICENOW_URL and a token or a user and password are set."""
    if not settings.servicenow_url:
        return None
    token = settings.servicenow_token.get_secret_value() if settings.servicenow_token else ""
    password = settings.servicenow_password.get_secret_value() if settings.servicenow_password else ""
    if not token and not (settings.servicenow_user and password):
        return None
    return ServiceNowTool(
        url=settings.servicenow_url,
        user=settings.servicenow_user,
        password=password or None,
        token=token or None,
        assignment_group=settings.servicenow_assignment_group,
    )


def incident_number(text: str) -> str | None:
    match = INCIDENT_NUMBER.search(text)
    return match.group(0) if match else None


def parse_time(value: object) -> datetime | None:
    """A Table API time (`2026-12-06 02:41:07`, UTC with display values off) as an aware datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), SN_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def _wait_asked(response: httpx.Response) -> float | None:
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = response.headers.get("X-RateLimit-Reset")
    if reset is not None:
        try:
            # An epoch second: the wait is what is left until then.
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


class ServiceNowTool:
    name = "servicenow"
    label = LABEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        url: str,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        assignment_group: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.assignment_group = assignment_group
        headers = {"Accept": "application/json"}
        auth: httpx.BasicAuth | None = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user and password:
            auth = httpx.BasicAuth(user, password)
        self.client = httpx.Client(base_url=self.url, headers=headers, auth=auth, follow_redirects=False)
        self.calls = 0

    def ref_in(self, word: str) -> str | None:
        return word.strip().upper() if INCIDENT_NUMBER.fullmatch(word.strip().upper()) else None

    def incident_key(self, alert: dict[str, Any]) -> str | None:
        details = alert.get("details") or {}
        read = (details.get(INCIDENT_TOOLS) or {}).get(self.name) or {}
        if read.get("key"):
            return str(read["key"])
        texts = [str(alert.get("title") or ""), str(alert.get("summary") or "")]
        texts += [str(v) for v in details.values() if isinstance(v, str)]
        for text in texts:
            if number := incident_number(text):
                return number
        return None

    def incident_url(self, sys_id: str) -> str:
        return f"{self.url}/nav_to.do?uri=incident.do%3Fsys_id%3D{sys_id}"

    # reading ----------------------------------------------------------------

    def read(self, key: str, *, deadline_s: float) -> IncidentFacts:
        row = self._by_number(key, Deadline(deadline_s))
        details = {
            name: str(row[field])[:500]
            for name, field in (("short_description", "short_description"), ("description", "description"), ("state", "state"))
            if row.get(field)
        }
        ci = row.get("cmdb_ci.name") or _ref_value(row.get("cmdb_ci"))
        group = row.get("assignment_group.name") or _ref_value(row.get("assignment_group"))
        if ci:
            details["cmdb_ci"] = str(ci)
        if group:
            details["assignment_group"] = str(group)
        return IncidentFacts(
            tool=self.name,
            key=str(row.get("number") or key),
            url=self.incident_url(str(row["sys_id"])),
            title=str(row.get("short_description") or ""),
            service=str(ci) if ci else None,
            urgency=str(row.get("urgency") or "") or None,
            priority=str(row.get("priority") or "") or None,
            assignees=tuple(str(n) for n in (group, row.get("assigned_to.name")) if n),
            opened_at=parse_time(row.get("opened_at")),
            details=details,
        )

    def _by_number(self, number: str, deadline: Deadline) -> dict[str, Any]:
        body = self._call(
            "GET",
            "/api/now/table/incident",
            deadline,
            params={"sysparm_query": f"number={number}", "sysparm_display_value": "false", "sysparm_fields": FIELDS, "sysparm_limit": "1"},
        ).json()
        rows = body.get("result") or []
        if not rows:
            raise TrackerError(f"ServiceNow has no incident {number}", permanent=True)
        return dict(rows[0])

    def _list(self, table: str, query: str, fields: str, deadline: Deadline) -> Iterator[dict[str, Any]]:
        """Rows of a query, page by page along the `Link: <...>; rel="next"` header."""
        params: dict[str, str] | None = {
            "sysparm_query": query,
            "sysparm_fields": fields,
            "sysparm_display_value": "false",
            "sysparm_limit": str(PAGE_SIZE),
        }
        url = f"/api/now/table/{table}"
        for _ in range(MAX_PAGES):
            response = self._call("GET", url, deadline, params=params)
            yield from response.json().get("result") or []
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            # The next link carries every parameter (and the offset) itself.
            url, params = following, None

    # writing ----------------------------------------------------------------

    def add_note(self, key: str, note: Note) -> bool:
        deadline = Deadline(WRITE_DEADLINE_S)
        sys_id = str(self._by_number(key, deadline)["sys_id"])
        query = f"element_id={sys_id}^element=work_notes^valueLIKE{note.marker}"
        if any(True for _ in self._list("sys_journal_field", query, "sys_id", deadline)):
            return False
        text = f"{note.summary}\n\nFull report: {note.report_url}\n({note.marker})"
        self._call("PATCH", f"/api/now/table/incident/{sys_id}", deadline, json={"work_notes": text})
        return True

    def find(self, marker: str, *, project: str) -> TicketRef | None:
        for row in self._list("incident", f"correlation_id={marker}", "sys_id,number", Deadline(WRITE_DEADLINE_S)):
            return TicketRef(key=str(row["number"]), url=self.incident_url(str(row["sys_id"])))
        return None

    def create(self, ticket: NewTicket) -> TicketRef:
        fields: dict[str, str] = {
            "short_description": ticket.summary[:160],
            "description": ticket.description,
            "correlation_id": ticket.marker,
            "correlation_display": "Incident Responder",
        }
        if ticket.priority:
            fields["urgency"] = ticket.priority
        if self.assignment_group:
            fields["assignment_group"] = self.assignment_group
        row = self._call("POST", "/api/now/table/incident", Deadline(WRITE_DEADLINE_S), json=fields).json().get("result") or {}
        if not row.get("sys_id"):
            raise TrackerError("ServiceNow created no incident (the answer has no sys_id)", permanent=False)
        return TicketRef(key=str(row.get("number") or row["sys_id"]), url=self.incident_url(str(row["sys_id"])))

    # one call ---------------------------------------------------------------

    def _call(self, method: str, url: str, deadline: Deadline, **kwargs: Any) -> httpx.Response:
        what = f"{method} {url.split('?')[0].removeprefix(self.url)}"

        def attempt() -> httpx.Response:
            self.calls += 1
            try:
                response = self.client.request(method, url, timeout=deadline.timeout(REQUEST_TIMEOUT_S), **kwargs)
            except httpx.HTTPError as exc:
                raise RetryableError(f"ServiceNow {what}: {type(exc).__name__}") from None
            status = response.status_code
            if status == 429 or status >= 500:
                raise RetryableError(f"ServiceNow {what} answered {status}", wait_s=_wait_asked(response) if status == 429 else None)
            if status == 401:
                raise TrackerError("ServiceNow refused the credentials (401): check SERVICENOW_USER/PASSWORD or TOKEN", permanent=True)
            if not response.is_success:
                raise TrackerError(f"ServiceNow {what} answered {status}: {_error_text(response)}", permanent=True)
            return response

        try:
            return with_retries(attempt, retries=RETRIES, deadline=deadline)
        except RetryableError as exc:
            raise TrackerError(str(exc), permanent=False) from None
        except SourceError as exc:
            raise TrackerError(f"ServiceNow {what}: {exc}", permanent=False) from None


def _ref_value(value: object) -> str | None:
    if isinstance(value, dict):
        return str(value.get("value") or "") or None
    return str(value) if value else None


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return response.text[:200]
    if isinstance(error, dict):
        return " ".join(str(error.get(k) or "") for k in ("message", "detail")).strip()[:300]
    return str(error)[:300]
