"""Who may start investigations and file tickets: optional allow-lists of channels, users and user groups."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.settings import Settings

log = structlog.get_logger(__name__)

GROUP_CACHE_S = 300.0


@dataclass(frozen=True, slots=True)
class Refusal:
    text: str


class UserGroupCache:
    """Members of Slack user groups (`S...` ids in SLACK_ALLOWED_USERS), refreshed every few minutes."""

    def __init__(self, ttl_s: float = GROUP_CACHE_S) -> None:
        self.ttl_s = ttl_s
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, client: WebClient, group_id: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._members.get(group_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        try:
            response = client.usergroups_users_list(usergroup=group_id)
            users = frozenset(response.get("users") or [])
        except SlackApiError as exc:
            log.warning("usergroup_lookup_failed", usergroup=group_id, error=exc.response.get("error"))
            # A stale list beats locking everyone out while Slack hiccups.
            return cached[1] if cached is not None else frozenset()
        with self._lock:
            self._members[group_id] = (now, users)
        return users


_groups = UserGroupCache()


def _is_group(entry: str) -> bool:
    return entry.startswith("S")


def check_access(settings: Settings, client: WebClient, *, user_id: str, channel_id: str, what: str) -> Refusal | None:
    """None when allowed; otherwise the ephemeral text that says why not and whom to ask."""
    if settings.slack_allowed_channels and channel_id not in settings.slack_allowed_channels:
        allowed = ", ".join(f"<#{c}>" for c in settings.slack_allowed_channels)
        return Refusal(f":no_entry: {what} is not enabled in this channel. Use it in {allowed}.")
    if settings.slack_allowed_users:
        direct = [e for e in settings.slack_allowed_users if not _is_group(e)]
        if user_id in direct:
            return None
        if any(user_id in _groups.members(client, g) for g in settings.slack_allowed_users if _is_group(g)):
            return None
        return Refusal(
            f":no_entry: You are not on the list of people allowed to use {what}. "
            "Ask your Incident Responder admin to add you to SLACK_ALLOWED_USERS."
        )
    return None
