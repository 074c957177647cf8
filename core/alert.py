"""The normalised alert: every way an investigation starts ends up as one of these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from core.timeparse import parse_iso


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
    def text(self) -> str:
        """Everything the alert says, for matching words against evidence and runbooks."""
        return " ".join([self.title, self.summary, *(f"{k} {v}" for k, v in self.details.items() if isinstance(v, str | int | float))])


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
            details=payload.get("details") if isinstance(payload.get("details"), dict) else {},
        )
    except ValidationError as exc:
        raise AlertError(f"the alert is not usable: {exc.errors()[0]['msg']}") from exc
