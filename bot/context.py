"""What every listener needs, built once per Bolt app: settings, the Slack client, and safe ways to answer."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from core.queue import QueueUnavailable
from core.runtime import get_store
from core.settings import Settings

log = structlog.get_logger(__name__)

UNAVAILABLE = (
    ":warning: Incident Responder is temporarily unavailable (its database or queue is not answering). Please try again in a minute."
)
# What a listener may hit when the database or Redis is down; anything else is a bug and is logged as one.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, RedisError, QueueUnavailable, OSError)


@dataclass(frozen=True, slots=True)
class BotContext:
    settings: Settings
    client: WebClient

    def ephemeral(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        """Tell one person something; a failure here is logged, never raised into the listener."""
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.warning("ephemeral_failed", channel=channel, error=exc.response.get("error"))

    def reply(self, *, channel: str, thread_ts: str, text: str) -> str | None:
        """A thread reply; returns its ts, None when Slack refused it (logged)."""
        try:
            response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, unfurl_links=False)
            return str(response["ts"])
        except SlackApiError as exc:
            log.warning("thread_reply_failed", channel=channel, error=exc.response.get("error"))
            return None


def first_delivery(key: str, kind: str) -> bool:
    """True the first time Slack delivers this key (event id, action ts); retries and duplicates get False."""
    return get_store().claim_delivery(key, kind)
