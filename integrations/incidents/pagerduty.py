"""PagerDuty REST API v2 through the `pagerduty` client: the incident behind an alert, and the report as a note.

The client retries 429 without limit by default, sleeping on its own schedule and
ignoring `Retry-After`; here it hands every answer back at once and `with_retries`
waits what PagerDuty asked for, never past the read's deadline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from core.alert import EXPRESSION_KEYS, INCIDENT_TOOLS
from core.settings import Settings
from core.timeparse import parse_iso
from integrations.errors import SourceError
from integrations.incidents.base import Capability, IncidentFacts, Note, TimelineEntry, TrackerError
from integrations.remote_calls import Deadline, RetryableError, with_retries

if TYPE_CHECKING:
    from httpx2 import Response
    from pagerduty import RestApiV2Client

log = structlog.get_logger(__name__)

LABEL = "PagerDuty"
CAPABILITIES = frozenset({Capability.read, Capability.note})
PAGE_SIZE = 100
MAX_ALERTS = 50
MAX_LOG_ENTRIES = 100
MAX_DETAILS = 60
DETAIL_MAX_CHARS = 500
NOTE_MAX_CHARS = 25_000
REQUEST_TIMEOUT_S = 10.0
RETRIES = 4
WRITE_DEADLINE_S = 30.0
PAGERDUTY_SOURCES = frozenset({"pagerduty_post", "pagerduty_webhook"})
# What a person types: an incident's web link or its number (#1234).
INCIDENT_URL = re.compile(r"^<?https?://[\w.-]+\.pagerduty\.com/incidents/([A-Za-z0-9]+)\S*?>?$")
INCIDENT_NUMBER = re.compile(r"^(?:pd)?#(\d+)$", re.IGNORECASE)


def from_settings(settings: Settings) -> PagerDutyTool | None:
    """The tool, or None without PAGERDUTY_API_TOKEN."""
    if settings.pagerduty_api_token is None or not settings.pagerduty_api_token.get_secret_value():
        return None
    return PagerDutyTool(
        token=settings.pagerduty_api_token.get_secret_value(), from_email=settings.pagerduty_from_email, url=settings.pagerduty_api_url
    )


def incident_ref(word: str) -> str | None:
    """The incident id or number a word of `/investigate` names (a PagerDuty link or #1234), else None."""
    if match := INCIDENT_URL.match(word.strip()):
        return match.group(1)
    if match := INCIDENT_NUMBER.match(word.strip()):
        return match.group(1)
    return None


def _wait_asked(response: Response) -> float | None:
    """Seconds PagerDuty asked us to wait: `Retry-After`, else `ratelimit-reset` (seconds until the window resets)."""
    for header in ("Retry-After", "ratelimit-reset"):
        value = response.headers.get(header)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if len(out) >= MAX_DETAILS:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list):
        out.setdefault(prefix, json.dumps(value, default=str)[:DETAIL_MAX_CHARS])
    elif value not in (None, ""):
        out.setdefault(prefix, str(value)[:DETAIL_MAX_CHARS])
        leaf = prefix.rsplit(".", 1)[-1]
        if leaf != prefix and leaf.lower() in EXPRESSION_KEYS:
            # A nested rule query (annotations.expr) under its own name too: the metric sources look for `expr`/`query`.
            out.setdefault(leaf, str(value)[:DETAIL_MAX_CHARS])


def alert_details(alert: dict[str, Any]) -> dict[str, str]:
    """An alert's custom details as flat strings: `body.details` (an object or a string) and the CEF fields."""
    body = alert.get("body") or {}
    out: dict[str, str] = {}
    details = body.get("details")
    if isinstance(details, dict):
        _flatten("", details, out)
    elif isinstance(details, str) and details.strip():
        out.setdefault("details", details[:DETAIL_MAX_CHARS])
    cef = body.get("cef_details") or {}
    if isinstance(cef, dict):
        if isinstance(cef.get("details"), dict):
            _flatten("", cef["details"], out)
        for field in ("source_origin", "source_component", "source_location", "event_class", "reporter_component"):
            if cef.get(field):
                out.setdefault(field, str(cef[field])[:DETAIL_MAX_CHARS])
    return out


class PagerDutyTool:
    name = "pagerduty"
    label = LABEL
    capabilities = CAPABILITIES

    def __init__(self, *, token: str, from_email: str | None, url: str) -> None:
        from pagerduty import RestApiV2Client, UrlError

        try:
            client: RestApiV2Client = RestApiV2Client(token, default_from=from_email or None, base_url=url.rstrip("/"))
        except UrlError as exc:
            raise TrackerError(f"PAGERDUTY_API_URL {url!r} is not usable: {exc}", permanent=True) from exc
        # Every 429 comes straight back (a negative cap stops the client's own loop before its first sleep),
        # and so does every network error: with_retries then waits what PagerDuty asked, within our deadline.
        client.retry = {429: 1}
        client.max_http_attempts = -1
        client.max_network_attempts = 0
        self.client = client
        self.from_email = from_email
        self.url = url.rstrip("/")
        self.calls = 0

    def ref_in(self, word: str) -> str | None:
        return incident_ref(word)

    def incident_key(self, alert: dict[str, Any]) -> str | None:
        read = ((alert.get("details") or {}).get(INCIDENT_TOOLS) or {}).get(self.name) or {}
        if read.get("key"):
            return str(read["key"])
        if alert.get("source") in PAGERDUTY_SOURCES and alert.get("incident_id"):
            return str(alert["incident_id"])
        return None

    # reading ----------------------------------------------------------------

    def read(self, key: str, *, deadline_s: float) -> IncidentFacts:
        deadline = Deadline(deadline_s)
        incident = self._get(f"/incidents/{key}", deadline, "incident").get("incident") or {}
        incident_id = str(incident.get("id") or key)
        missing: list[str] = []
        details: dict[str, str] = {}
        timeline: list[TimelineEntry] = []
        try:
            for alert in self._pages(f"/incidents/{incident_id}/alerts", "alerts", deadline, limit=MAX_ALERTS):
                for name, value in alert_details(alert).items():
                    details.setdefault(name, value)
        except (SourceError, TrackerError) as exc:
            missing.append(f"alerts: {exc}")
        try:
            for entry in self._pages(
                f"/incidents/{incident_id}/log_entries", "log_entries", deadline, limit=MAX_LOG_ENTRIES, params={"is_overview": "true"}
            ):
                if timed := _timeline_entry(entry):
                    timeline.append(timed)
        except (SourceError, TrackerError) as exc:
            missing.append(f"log entries: {exc}")
        service = incident.get("service") or {}
        priority = incident.get("priority") or {}
        return IncidentFacts(
            tool=self.name,
            key=incident_id,
            url=incident.get("html_url"),
            title=str(incident.get("title") or incident.get("summary") or ""),
            service=service.get("summary"),
            service_id=service.get("id"),
            urgency=incident.get("urgency"),
            priority=priority.get("summary") if isinstance(priority, dict) else None,
            assignees=tuple(who for a in incident.get("assignments") or [] if (who := str((a.get("assignee") or {}).get("summary") or ""))),
            opened_at=_time(incident.get("created_at")),
            details=details,
            timeline=tuple(sorted(timeline, key=lambda t: t.at)),
            missing=tuple(missing),
        )

    def _pages(
        self, path: str, wrapper: str, deadline: Deadline, *, limit: int, params: dict[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Classic pagination (`limit`, `offset`, `more`), stopping after `limit` items."""
        offset, seen = 0, 0
        while True:
            body = self._get(path, deadline, wrapper, params={**(params or {}), "limit": str(PAGE_SIZE), "offset": str(offset)})
            items = body.get(wrapper) or []
            for item in items:
                if seen >= limit:
                    return
                seen += 1
                yield item
            if not body.get("more") or not items:
                return
            offset += len(items)

    def _get(self, path: str, deadline: Deadline, what: str, *, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._call(lambda: self.client.get(path, params=params), deadline, f"GET {what}")

    # writing ----------------------------------------------------------------

    def add_note(self, key: str, note: Note) -> bool:
        if not self.from_email:
            raise TrackerError("PagerDuty notes need PAGERDUTY_FROM_EMAIL (the e-mail of a PagerDuty user)", permanent=True)
        deadline = Deadline(WRITE_DEADLINE_S)
        existing = self._get(f"/incidents/{key}/notes", deadline, "notes").get("notes") or []
        if any(note.marker in str(n.get("content") or "") for n in existing):
            return False
        content = f"{note.summary}\n\nFull report: {note.report_url}\n({note.marker})"
        if len(content) > NOTE_MAX_CHARS:
            keep = NOTE_MAX_CHARS - len(content) + len(note.summary) - 1
            content = f"{note.summary[:keep]}…\n\nFull report: {note.report_url}\n({note.marker})"
        self._call(lambda: self.client.post(f"/incidents/{key}/notes", json={"note": {"content": content}}), deadline, "POST note")
        return True

    # one call ---------------------------------------------------------------

    def _call(self, send: Callable[[], Response], deadline: Deadline, what: str) -> dict[str, Any]:
        from pagerduty import Error as PagerDutyError

        def attempt() -> dict[str, Any]:
            self.client.timeout = deadline.timeout(REQUEST_TIMEOUT_S)  # type: ignore[assignment]  # httpx takes float seconds; the library annotates int
            self.calls += 1
            try:
                response = send()
            except PagerDutyError as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if status == 401:
                    raise TrackerError("PagerDuty refused PAGERDUTY_API_TOKEN (401)", permanent=True) from None
                raise RetryableError(f"PagerDuty {what}: {type(exc).__name__}") from None
            status = response.status_code
            if status == 429 or status >= 500:
                raise RetryableError(f"PagerDuty {what} answered {status}", wait_s=_wait_asked(response) if status == 429 else None)
            if not response.is_success:
                raise TrackerError(f"PagerDuty {what} answered {status}: {_error_text(response)}", permanent=True)
            body = response.json() if response.content else {}
            return body if isinstance(body, dict) else {}

        try:
            return with_retries(attempt, retries=RETRIES, deadline=deadline)
        except RetryableError as exc:
            raise TrackerError(str(exc), permanent=False) from None
        except SourceError as exc:
            # The deadline ran out between tries: the next job attempt may fare better.
            raise TrackerError(f"PagerDuty {what}: {exc}", permanent=False) from None


def _error_text(response: Response) -> str:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return response.text[:200]
    errors = error.get("errors") if isinstance(error, dict) else None
    text = str(error.get("message") if isinstance(error, dict) else error)
    return f"{text} ({'; '.join(map(str, errors))})"[:300] if errors else text[:300]


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _timeline_entry(entry: dict[str, Any]) -> TimelineEntry | None:
    at = _time(entry.get("created_at"))
    if at is None:
        return None
    kind = str(entry.get("type") or "").removesuffix("_log_entry").replace("_", " ")
    summary = str(entry.get("summary") or kind or "log entry")
    return TimelineEntry(at=at, event=f"PagerDuty: {summary}"[:200])
