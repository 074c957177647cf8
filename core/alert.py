"""The normalised alert: every way an investigation starts ends up as one of these."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field, ValidationError

from core.timeparse import parse_iso

# Details that hold the alerting rule's query, as Alertmanager labels/annotations or PagerDuty custom details name it.
EXPRESSION_KEYS = frozenset({"expr", "expression", "promql", "query"})
# A Prometheus graph link (Alertmanager's generatorURL, `Source:` in its PagerDuty/Slack text) carries the rule's query.
_GRAPH_LINK = re.compile(r"https?://[^\s<>|\"'`]+?[?&]g\d+\.expr=[^\s<>|\"'`]+")
MAX_EXPRESSIONS = 3
_MAX_DEPTH = 4
# Alert details an incident tool (PagerDuty, ServiceNow) added: what each said, and its timeline entries.
INCIDENT_TOOLS = "incident_tools"
INCIDENT_TIMELINE = "incident_timeline"


class AlertError(ValueError):
    """The alert cannot start an investigation; the message says what is missing."""


class Alert(BaseModel):
    title: str
    service: str
    summary: str = ""
    urgency: str = "high"
    status: str = "triggered"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str = "cli"
    url: str | None = None
    incident_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def to_report_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "service": self.service,
            "summary": self.summary,
            "urgency": self.urgency,
            "status": self.status,
            "created_at": self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "url": self.url,
            "incident_id": self.incident_id,
            "details": self.details,
        }

    @property
    def incident_timeline(self) -> list[tuple[datetime, str, str]]:
        """(UTC time, event, tool) entries an incident tool recorded (triggered, escalated, acknowledged)."""
        entries = []
        for item in self.details.get(INCIDENT_TIMELINE) or []:
            if not isinstance(item, dict):
                continue
            try:
                at = parse_iso(str(item.get("at")))
            except ValueError:
                continue
            entries.append((at, str(item.get("event") or ""), str(item.get("source") or "")))
        return entries

    @property
    def text(self) -> str:
        """Everything the alert says, for matching words against evidence and runbooks."""
        return " ".join([self.title, self.summary, *(f"{k} {v}" for k, v in self.details.items() if isinstance(v, str | int | float))])

    @property
    def expressions(self) -> list[str]:
        """The alerting rule's queries the alert carries, as written: an `expr`/`query` detail, a graph link's `g0.expr`."""
        found: list[str] = []
        for expr in (*_expressions_in(self.details, 0), *_graph_expressions(self.url or "")):
            expr = expr.strip()
            if expr and expr not in found:
                found.append(expr)
        return found[:MAX_EXPRESSIONS]


def _details_of(payload: dict[str, Any]) -> dict[str, Any]:
    """`details`, or PagerDuty's custom details: an Events v2 payload's `custom_details`, an incident alert's `body.details`."""
    body = payload.get("body")
    for candidate in (payload.get("details"), payload.get("custom_details"), body.get("details") if isinstance(body, dict) else None):
        if isinstance(candidate, dict):
            return candidate
    return {}


def _expressions_in(node: Any, depth: int) -> Iterator[str]:
    """Expressions in nested details (PagerDuty custom details may nest; Alertmanager's are text with links)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and str(key).lower() in EXPRESSION_KEYS:
                yield value
            else:
                yield from _expressions_in(value, depth + 1)
    elif isinstance(node, list):
        for item in node[:50]:
            yield from _expressions_in(item, depth + 1)
    elif isinstance(node, str):
        yield from _graph_expressions(node)


def _graph_expressions(text: str) -> Iterator[str]:
    for link in _GRAPH_LINK.findall(text):
        query = parse_qs(urlsplit(link.replace("&amp;", "&")).query)
        for name in sorted(k for k in query if re.fullmatch(r"g\d+\.expr", k)):
            yield from query[name]


def alert_from_payload(payload: Any, *, source: str = "cli") -> Alert:
    """An Alert from a PagerDuty-like JSON document (id, title, service, created_at, ...)."""
    if not isinstance(payload, dict):
        raise AlertError("the alert must be a JSON object")
    service = payload.get("service")
    if isinstance(service, dict):
        service = service.get("summary") or service.get("name")
    if not service or not isinstance(service, str):
        raise AlertError("the alert names no service (expected a 'service' field)")
    created = payload.get("created_at") or payload.get("triggered_at")
    try:
        created_at = parse_iso(created) if isinstance(created, str) else datetime.now(UTC)
    except ValueError as exc:
        raise AlertError(f"the alert's created_at {created!r} is not an ISO-8601 time") from exc
    try:
        return Alert(
            title=str(payload.get("title") or payload.get("summary") or f"Alert on {service}"),
            service=service,
            summary=str(payload.get("summary") or ""),
            urgency=str(payload.get("urgency") or "high"),
            status=str(payload.get("status") or "triggered"),
            created_at=created_at,
            source=source,
            url=payload.get("html_url") or payload.get("url"),
            incident_id=str(payload["id"]) if payload.get("id") else None,
            details=_details_of(payload),
        )
    except ValidationError as exc:
        raise AlertError(f"the alert is not usable: {exc.errors()[0]['msg']}") from exc
