"""The notify role: who is told that a report is ready (a Slack channel, a Teams channel, e-mail, a webhook).

A notifier sends one `Notice`. It raises `RetryableError` when another try may work
(a 429, a 5xx, a refused connection) and `SourceError` when it cannot (a bad address,
a rejected credential). Delivery is a queued job per (investigation, target), retried
with backoff, so a failing target never holds the report or the other targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Notice:
    """A finished report as every notifier needs it: the facts, and the report rendered for people (text, HTML)."""

    investigation_id: str
    service: str
    title: str
    category: str
    confidence: float
    summary: str
    report_url: str
    text: str
    html: str
    degraded: bool = False
    culprit: str | None = None
    actions: tuple[str, ...] = ()
    thread_url: str | None = None
    # A stable id per (investigation, target): receivers that see it twice drop the second copy.
    delivery_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def summary_json(self) -> dict[str, Any]:
        """The report summary a machine receives (webhooks): no rendered text, no evidence."""
        return {
            "type": "investigation.report_ready",
            "investigation_id": self.investigation_id,
            "service": self.service,
            "title": self.title,
            "root_cause": {"category": self.category, "confidence": self.confidence, "summary": self.summary},
            "culprit": self.culprit,
            "actions": list(self.actions),
            "degraded": self.degraded,
            "report_url": self.report_url,
            "thread_url": self.thread_url,
        }


@dataclass(frozen=True, slots=True)
class OpsNotice:
    """The responder's own trouble (a job failed for good, a source failing run after run, the LLM breaker open,
    the queue backing up), told to the people who run it: a title, a few lines, and where to look."""

    signal: str
    subject: str
    title: str
    text: str
    link: str
    at: datetime
    # Stable per alert and target, as Notice.delivery_id: a repeat after a retried job is recognisable.
    delivery_id: str

    def summary_json(self) -> dict[str, Any]:
        return {
            "type": "responder.ops_alert",
            "signal": self.signal,
            "subject": self.subject,
            "title": self.title,
            "text": self.text,
            "link": self.link,
            "at": self.at.isoformat(),
        }


class Notifier(Protocol):
    name: str

    @property
    def target(self) -> str:
        """Where it sends, without secrets (a channel, addresses, a host): shown in the dashboard and logs."""
        ...

    def send(self, notice: Notice) -> None: ...


@runtime_checkable
class OpsNotifier(Protocol):
    """A notifier that can also carry an ops notice (every notify kind can): the ops targets of `defaults.ops_notify`."""

    def send_ops(self, notice: OpsNotice) -> None: ...
