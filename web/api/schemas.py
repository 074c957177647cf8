"""Request and response bodies of /api/v1 (the OpenAPI spec is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.report import Category, Report
from core.models import Source, Status

# PostgreSQL text cannot hold NUL; refusing it here makes it a 422 instead of a database error.
NO_NUL = r"^[^\x00]*$"


class CreateInvestigation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(
        min_length=1, max_length=200, pattern=NO_NUL, description="A service of the catalog (or any name when no catalog is configured)."
    )
    alert_text: str = Field(
        min_length=1, max_length=4000, pattern=NO_NUL, description="What is wrong, in words; becomes the investigation's title."
    )
    since: str | None = Field(None, pattern=r"^\s*\d{1,6}\s*[smhdw]\s*$", description="How far back to look before `at`: 30m, 2h, 1d.")
    at: datetime | None = Field(None, description="When it happened (ISO 8601; UTC when no offset); default now.")
    alert: dict[str, Any] | None = Field(None, description="The original alert payload (PagerDuty-like), kept with the investigation.")


class AskQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=4000, pattern=NO_NUL)


class Links(BaseModel):
    api: str
    dashboard: str


class InvestigationCreated(BaseModel):
    id: str
    status: Status
    parent_id: str | None = None
    links: Links
    queued: bool = Field(
        True, description="False while the job queue (Redis) is down: the investigation is recorded and runs when the queue is back."
    )
    message: str | None = Field(None, description="Why `queued` is false.")


class InvestigationSummary(BaseModel):
    id: str
    status: Status
    service: str
    title: str
    source: Source
    category: Category | None
    confidence: float | None
    parent_id: str | None
    created_at: datetime
    finished_at: datetime | None
    links: Links


class InvestigationPage(BaseModel):
    items: list[InvestigationSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page.")


class ProgressEventOut(BaseModel):
    id: int
    at: datetime
    stage: str
    message: str
    milestone: bool
    data: dict[str, Any]


class FollowUpOut(BaseModel):
    id: int
    question: str
    status: str
    answer: str | None
    answered_by: str | None
    asked_by: str | None
    created_at: datetime
    answered_at: datetime | None


class JiraOut(BaseModel):
    status: str
    key: str | None
    url: str | None


class JiraRequested(JiraOut):
    investigation_id: str
    created: bool = Field(description="True when this request claimed the ticket; false when one was already requested.")


class TicketActionOut(BaseModel):
    tool: str = Field(description="the incident tool: pagerduty, servicenow, ...")
    action: str = Field(description="note (the report added to the incident) or create (an incident filed on request)")
    status: str = Field(description="pending, done or failed")
    key: str | None = Field(description="the incident the note went to, or the one filed")
    url: str | None
    error: str | None


class TicketRequested(TicketActionOut):
    investigation_id: str
    created: bool = Field(description="True when this request claimed the incident; false when one was already requested.")


class NotificationOut(BaseModel):
    target: str = Field(description="notify:<name> and where it sends, without secrets")
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    error: str | None
    delivered_at: datetime | None


class InvestigationDetail(InvestigationSummary):
    window_start: datetime
    window_end: datetime
    at: datetime
    alert: dict[str, Any]
    error: str | None
    slack_thread_url: str | None
    jira: JiraOut | None
    progress: list[ProgressEventOut]
    follow_ups: list[FollowUpOut]
    report: Report | None
    resolution: str | None = Field(None, description="How the incident was resolved, once recorded.")
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    notifications: list[NotificationOut] = Field(default_factory=list, description="who was told of the finished report, and how it went")
    tickets: list[TicketActionOut] = Field(default_factory=list, description="notes added to incident tools and incidents filed there")
