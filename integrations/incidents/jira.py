"""Jira through the `jira` library: find the ticket an investigation already has, or file it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
import structlog

from core.settings import Settings
from integrations.incidents.base import Capability, NewTicket, TicketRef, TrackerError

if TYPE_CHECKING:
    from jira import JIRAError
    from jira.resources import Issue

log = structlog.get_logger(__name__)

LABEL = "Jira"
CAPABILITIES = frozenset({Capability.create})
ISSUE_TYPE = "Bug"
TIMEOUT_S = 20.0
# The library retries 429/5xx itself; the queue retries the whole job, so one extra try here is enough.
LIBRARY_RETRIES = 1


def from_settings(settings: Settings) -> JiraTracker | None:
    """The tracker, or None when JIRA_URL/JIRA_USER/JIRA_API_TOKEN are not all set."""
    if not (settings.jira_url and settings.jira_user and settings.jira_api_token):
        return None
    return JiraTracker(url=settings.jira_url, user=settings.jira_user, token=settings.jira_api_token.get_secret_value())


def _error(exc: JIRAError | requests.RequestException, doing: str) -> TrackerError:
    from jira import JIRAError

    if isinstance(exc, JIRAError):
        status = exc.status_code or 0
        text = (exc.text or str(exc)).strip()[:300]
        # 4xx (bad field, no permission, no such project) will fail the same way next time; 429 and 5xx may not.
        return TrackerError(f"Jira {doing} failed ({status}): {text}", permanent=400 <= status < 500 and status != 429)
    return TrackerError(f"Jira {doing} failed: {type(exc).__name__}: {exc}", permanent=False)


class JiraTracker:
    name = "jira"
    label = LABEL
    capabilities = CAPABILITIES

    def __init__(self, *, url: str, user: str, token: str, issue_type: str = ISSUE_TYPE) -> None:
        # Imported here: the jira library loads only where a ticket is filed.
        from jira import JIRA, JIRAError

        self.url = url.rstrip("/")
        self.issue_type = issue_type
        try:
            self.client = JIRA(server=self.url, basic_auth=(user, token), timeout=TIMEOUT_S, max_retries=LIBRARY_RETRIES)
        except (JIRAError, requests.RequestException) as exc:
            raise _error(exc, "login") from exc

    def incident_key(self, alert: dict[str, Any]) -> str | None:
        # Alerts do not name Jira tickets: a ticket is only ever filed from here.
        return None

    def browse_url(self, key: str) -> str:
        return f"{self.url}/browse/{key}"

    def find(self, marker: str, *, project: str) -> TicketRef | None:
        from jira import JIRAError

        try:
            issues = self.client.search_issues(f'project = "{project}" AND labels = "{marker}" ORDER BY created ASC', maxResults=1)
        except (JIRAError, requests.RequestException) as exc:
            raise _error(exc, "search") from exc
        for issue in issues:
            return TicketRef(key=issue.key, url=self.browse_url(issue.key))
        return None

    def create(self, ticket: NewTicket) -> TicketRef:
        from jira import JIRAError

        fields: dict[str, object] = {
            "project": {"key": ticket.project},
            "issuetype": {"name": self.issue_type},
            "summary": ticket.summary,
            "description": ticket.description,
            "labels": [*ticket.labels, ticket.marker] if ticket.marker else list(ticket.labels),
        }
        if ticket.priority:
            fields["priority"] = {"name": ticket.priority}
        try:
            issue = self._create(fields)
        except JIRAError as exc:
            if "priority" not in fields or exc.status_code != 400 or "priority" not in (exc.text or "").lower():
                raise _error(exc, "create") from exc
            # Some projects keep priority off the create screen; a ticket without one beats no ticket.
            log.warning("jira_priority_rejected", project=ticket.project)
            fields.pop("priority")
            try:
                issue = self._create(fields)
            except JIRAError as again:
                raise _error(again, "create") from again
        return TicketRef(key=issue.key, url=self.browse_url(issue.key))

    def _create(self, fields: dict[str, object]) -> Issue:
        try:
            return self.client.create_issue(fields=fields, prefetch=False)
        except requests.RequestException as exc:
            raise _error(exc, "create") from exc
