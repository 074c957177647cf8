"""Jira through the `jira` library: find the ticket an investigation already has, or file it."""

from __future__ import annotations

import requests
import structlog
from jira import JIRA, JIRAError
from jira.resources import Issue

from integrations.incidents.base import NewTicket, TicketRef, TrackerError

log = structlog.get_logger(__name__)

ISSUE_TYPE = "Bug"
TIMEOUT_S = 20.0
# The library retries 429/5xx itself; the queue retries the whole job, so one extra try here is enough.
LIBRARY_RETRIES = 1


def _error(exc: JIRAError | requests.RequestException, doing: str) -> TrackerError:
    if isinstance(exc, JIRAError):
        status = exc.status_code or 0
        text = (exc.text or str(exc)).strip()[:300]
        # 4xx (bad field, no permission, no such project) will fail the same way next time; 429 and 5xx may not.
        return TrackerError(f"Jira {doing} failed ({status}): {text}", permanent=400 <= status < 500 and status != 429)
    return TrackerError(f"Jira {doing} failed: {type(exc).__name__}: {exc}", permanent=False)


class JiraTracker:
    name = "jira"

    def __init__(self, *, url: str, user: str, token: str, issue_type: str = ISSUE_TYPE) -> None:
        self.url = url.rstrip("/")
        self.issue_type = issue_type
        try:
            self.client = JIRA(server=self.url, basic_auth=(user, token), timeout=TIMEOUT_S, max_retries=LIBRARY_RETRIES)
        except (JIRAError, requests.RequestException) as exc:
            raise _error(exc, "login") from exc

    def browse_url(self, key: str) -> str:
        return f"{self.url}/browse/{key}"

    def find(self, marker: str, *, project: str) -> TicketRef | None:
        try:
            issues = self.client.search_issues(f'project = "{project}" AND labels = "{marker}" ORDER BY created ASC', maxResults=1)
        except (JIRAError, requests.RequestException) as exc:
            raise _error(exc, "search") from exc
        for issue in issues:
            return TicketRef(key=issue.key, url=self.browse_url(issue.key))
        return None

    def create(self, ticket: NewTicket) -> TicketRef:
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
