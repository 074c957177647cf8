"""Every way into the bot, in one table: (kind, what Slack sends) -> handler.

Handlers name the Bolt arguments they need (`ack`, `body`, `command`, `event`, `shortcut`, `view`)
plus `ctx`, the BotContext a middleware puts into every request's context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from bot.alert_posts import handle_alert_post
from bot.alerts import recognise
from bot.blocks import ACTION_CREATE_JIRA, ACTION_CREATE_TICKET, ACTION_OPEN_REPORT, ACTION_RERUN
from bot.buttons import handle_create_jira, handle_create_ticket, handle_link_button, handle_rerun
from bot.command_investigate import USAGE, handle_investigate
from bot.context import BACKEND_ERRORS, BotContext, first_delivery
from bot.home import handle_app_home_opened
from bot.modals import ACTION_HOME_START, CALLBACK_INVESTIGATE, SHORTCUT_INVESTIGATE_MESSAGE
from bot.payloads import EventEnvelope, MessageEvent
from bot.shortcuts import handle_home_start, handle_investigate_submission, handle_message_shortcut
from bot.thread_replies import handle_thread_reply, is_human_thread_reply

log = structlog.get_logger(__name__)


def handle_message_event(body: EventEnvelope, event: MessageEvent, ctx: BotContext) -> None:
    """Message events are acked by Bolt before this runs; pick out alert posts (bot.alerts) and thread questions."""
    channel = event.get("channel", "")
    edited = event.get("subtype") == "message_changed"
    message = event.get("message") if edited else event
    if message is None or _own(body, message):
        return
    recognised = recognise(message, pagerduty_ids=ctx.settings.slack_pagerduty_bot_ids)
    if recognised is not None:
        parser, post = recognised
        watched = ctx.settings.slack_watched_channels
        if post is None:
            log.info("alert_post_without_alert", tool=parser.tool, channel=channel)
        elif (not watched or channel in watched) and _first(body):
            handle_alert_post(post, channel=channel, root_ts=message.get("thread_ts") or message.get("ts", ""), ctx=ctx)
    elif not edited and is_human_thread_reply(message) and _first(body):
        handle_thread_reply(message, channel=channel, ctx=ctx)


def _own(body: EventEnvelope, message: MessageEvent) -> bool:
    """Our own posts (reports quote alert titles and links) are never alerts to investigate."""
    ours = {a.get("user_id") for a in body.get("authorizations") or []} | {body.get("api_app_id")}
    profile = message.get("bot_profile") or {}
    return bool({message.get("app_id"), profile.get("app_id"), message.get("user")} & (ours - {None, ""}))


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
    kind: Literal["command", "event", "action", "shortcut", "view"]
    match: str | re.Pattern[str]
    handler: Callable[..., Any]


ROUTES: tuple[Route, ...] = (
    Route("command", "/investigate", handle_investigate),
    Route("event", "message", handle_message_event),
    Route("event", "app_mention", handle_app_mention),
    Route("event", "app_home_opened", handle_app_home_opened),
    Route("shortcut", SHORTCUT_INVESTIGATE_MESSAGE, handle_message_shortcut),
    Route("view", CALLBACK_INVESTIGATE, handle_investigate_submission),
    Route("action", ACTION_HOME_START, handle_home_start),
    Route("action", ACTION_CREATE_JIRA, handle_create_jira),
    Route("action", re.compile(re.escape(ACTION_CREATE_TICKET) + r"\w+"), handle_create_ticket),
    Route("action", ACTION_RERUN, handle_rerun),
    Route("action", re.compile(re.escape(ACTION_OPEN_REPORT) + ".*"), handle_link_button),
)
