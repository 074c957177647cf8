"""The notify role: who is told that a report is ready (a Slack channel, a Teams channel, e-mail, a webhook).

A notifier sends one `Notice`. It raises `RetryableError` when another try may work
(a 429, a 5xx, a refused connection) and `SourceError` when it cannot (a bad address,
a rejected credential). Delivery is a queued job per (investigation, target), retried
with backoff, so a failing target never holds the report or the other targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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


class Notifier(Protocol):
    name: str

    @property
    def target(self) -> str:
        """Where it sends, without secrets (a channel, addresses, a host): shown in the dashboard and logs."""
        ...

    def send(self, notice: Notice) -> None: ...
