"""Every way into the bot, in one table: (kind, what Slack sends) -> handler.

Handlers name the Bolt arguments they need (`ack`, `body`, `command`, `event`)
plus `ctx`, the BotContext a middleware puts into every request's context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from bot.alert_posts import handle_alert_post
from bot.blocks import ACTION_CREATE_JIRA, ACTION_OPEN_REPORT, ACTION_RERUN
from bot.buttons import handle_create_jira, handle_link_button, handle_rerun
from bot.command_investigate import USAGE, handle_investigate
from bot.context import BACKEND_ERRORS, BotContext, first_delivery
from bot.pagerduty_post import is_pagerduty_message
from bot.payloads import EventEnvelope, MessageEvent
from bot.thread_replies import handle_thread_reply, is_human_thread_reply

log = structlog.get_logger(__name__)


def handle_message_event(body: EventEnvelope, event: MessageEvent, ctx: BotContext) -> None:
    """Message events are acked by Bolt before this runs; pick out PagerDuty posts and thread questions."""
    channel = event.get("channel", "")
    edited = event.get("subtype") == "message_changed"
    message = event.get("message") if edited else event
    if message is None:
        return
    if is_pagerduty_message(message, ctx.settings.slack_pagerduty_bot_ids):
        watched = ctx.settings.slack_watched_channels
        if (not watched or channel in watched) and _first(body):
            handle_alert_post(message, channel=channel, ctx=ctx)
    elif not edited and is_human_thread_reply(message) and _first(body):
        handle_thread_reply(message, channel=channel, ctx=ctx)


def handle_app_mention(body: EventEnvelope, event: MessageEvent, ctx: BotContext) -> None:
    """A mention outside a thread gets the usage; inside one, the message event already carries the question."""
    if event.get("thread_ts") or not event.get("user") or not _first(body):
        return
    ctx.ephemeral(
        channel=event.get("channel", ""), user=event.get("user", ""), text=f"Start an investigation with the slash command.\n{USAGE}"
    )


def _first(body: EventEnvelope) -> bool:
    """Slack retries an event (X-Slack-Retry-Num) with the same event_id; only the first delivery acts."""
    event_id = body.get("event_id")
    if not event_id:
        return True
    try:
        return first_delivery(f"slack-event:{event_id}", "slack_event")
    except BACKEND_ERRORS:
        log.exception("event_dedupe_failed", event_id=event_id)
        return False


@dataclass(frozen=True, slots=True)
class Route:
    kind: Literal["command", "event", "action"]
    match: str | re.Pattern[str]
    handler: Callable[..., Any]


ROUTES: tuple[Route, ...] = (
    Route("command", "/investigate", handle_investigate),
    Route("event", "message", handle_message_event),
    Route("event", "app_mention", handle_app_mention),
    Route("action", ACTION_CREATE_JIRA, handle_create_jira),
    Route("action", ACTION_RERUN, handle_rerun),
    Route("action", re.compile(re.escape(ACTION_OPEN_REPORT) + ".*"), handle_link_button),
)
