"""The incident tracker configured for this deployment; the agents ask for one here, never for a concrete class."""

from __future__ import annotations

from core.settings import Settings
from integrations.incidents.base import IncidentTracker


def configured_tracker(settings: Settings) -> IncidentTracker | None:
    """The configured tracker, or None when JIRA_URL/JIRA_USER/JIRA_API_TOKEN are not all set."""
    if not (settings.jira_url and settings.jira_user and settings.jira_api_token):
        return None
    # Imported here: the jira library is only loaded where a ticket is filed.
    from integrations.incidents.jira import JiraTracker

    return JiraTracker(url=settings.jira_url, user=settings.jira_user, token=settings.jira_api_token.get_secret_value())
