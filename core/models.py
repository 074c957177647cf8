"""Tables: investigations and what hangs off them.

JSON columns hold documents whose shape is owned elsewhere (the alert, the report
contract); everything we filter or join on is a real column.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_investigation_id() -> str:
    return "inv_" + secrets.token_hex(6)


class Status(StrEnum):
    queued = "queued"
    gathering = "gathering"
    analysing = "analysing"
    reporting = "reporting"
    done = "done"
    failed = "failed"
    degraded = "degraded"

    @property
    def finished(self) -> bool:
        return self in (Status.done, Status.failed, Status.degraded)


class Source(StrEnum):
    slack_command = "slack_command"
    pagerduty_post = "pagerduty_post"
    pagerduty_webhook = "pagerduty_webhook"
    alert_post = "alert_post"
    api = "api"
    cli = "cli"


class Investigation(SQLModel, table=True):
    __tablename__ = "investigations"
    __table_args__ = (
        Index("ix_investigations_service_created", "service", "created_at"),
        Index("ix_investigations_status", "status"),
    )

    id: str = Field(default_factory=new_investigation_id, primary_key=True, max_length=32)
    status: str = Field(default=Status.queued.value, max_length=16)
    source: str = Field(max_length=32)
    service: str = Field(max_length=200)
    title: str = Field(default="", max_length=500)
    alert: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    window_start: datetime
    window_end: datetime
    at: datetime
    slack_channel: str | None = Field(default=None, max_length=32)
    slack_thread_ts: str | None = Field(default=None, max_length=32)
    slack_status_ts: str | None = Field(default=None, max_length=32)
    slack_report_ts: str | None = Field(default=None, max_length=32)
    pagerduty_incident_id: str | None = Field(default=None, max_length=64, unique=True)
    parent_id: str | None = Field(default=None, max_length=32, description="the investigation this one re-runs or joins")
    requested_by: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=32)
    confidence: float | None = None
    report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # How the incident ended, as a person or the paging tool recorded it: what the incident history shows next time.
    resolution: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=64)


class ProgressEvent(SQLModel, table=True):
    __tablename__ = "progress_events"

    id: int | None = Field(default=None, primary_key=True)
    investigation_id: str = Field(foreign_key="investigations.id", index=True, max_length=32)
    at: datetime = Field(default_factory=utcnow)
    stage: str = Field(max_length=32)
    message: str
    milestone: bool = False
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class FollowUp(SQLModel, table=True):
    """A question asked about an investigation and the answer we gave."""

    __tablename__ = "follow_ups"
    __table_args__ = (UniqueConstraint("investigation_id", "dedupe_key", name="uq_follow_ups_dedupe"),)

    id: int | None = Field(default=None, primary_key=True)
    investigation_id: str = Field(foreign_key="investigations.id", index=True, max_length=32)
    dedupe_key: str = Field(max_length=64, description="Slack message ts, or a request id from the API")
    question: str
    asked_by: str | None = Field(default=None, max_length=64)
    answer: str | None = None
    answered_by: str | None = Field(default=None, max_length=16, description="offline or crew")
    status: str = Field(default="pending", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    answered_at: datetime | None = None


class JiraLink(SQLModel, table=True):
    """At most one ticket per investigation: the primary key makes a second one impossible."""

    __tablename__ = "jira_links"

    investigation_id: str = Field(foreign_key="investigations.id", primary_key=True, max_length=32)
    status: str = Field(default="pending", max_length=16)
    key: str | None = Field(default=None, max_length=32)
    url: str | None = None
    requested_by: str | None = Field(default=None, max_length=64)
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class TicketAction(SQLModel, table=True):
    """One write to an incident tool for an investigation (a note, a filed incident): the key allows one per kind."""

    __tablename__ = "ticket_actions"

    investigation_id: str = Field(foreign_key="investigations.id", primary_key=True, max_length=32)
    tool: str = Field(primary_key=True, max_length=32, description="pagerduty, servicenow, ...")
    action: str = Field(primary_key=True, max_length=16, description="note or create")
    status: str = Field(default="pending", max_length=16)
    target: str | None = Field(default=None, max_length=64, description="the tool's incident the note goes to")
    key: str | None = Field(default=None, max_length=64, description="the incident filed")
    url: str | None = None
    requested_by: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """One finished report told to one target (a channel, addresses, a webhook): at most one row per pair."""

    __tablename__ = "notifications"

    investigation_id: str = Field(foreign_key="investigations.id", primary_key=True, max_length=32)
    target: str = Field(primary_key=True, max_length=32, description="hash of the target's kind and options")
    label: str = Field(max_length=200, description="notify:<name> and where it sends, without secrets")
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class InboundDelivery(SQLModel, table=True):
    """A delivery we already acted on (Slack event id, webhook id): duplicates stop here."""

    __tablename__ = "inbound_deliveries"

    key: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=32)
    investigation_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class IdempotencyKey(SQLModel, table=True):
    """An `Idempotency-Key` an API client sent, the request it came with, and the investigation that request made or named."""

    __tablename__ = "idempotency_keys"

    # Scoped by client, so two clients' keys never collide.
    owner: str = Field(primary_key=True, max_length=100, description="the API key's name")
    key: str = Field(primary_key=True, max_length=64)
    request_hash: str = Field(max_length=64, description="sha256 of the route and the canonical body")
    investigation_id: str = Field(foreign_key="investigations.id", max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    prefix: str = Field(index=True, max_length=16)
    key_hash: str = Field(max_length=128)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
