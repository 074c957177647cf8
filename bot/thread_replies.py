"""A person's reply in an investigation thread is a follow-up question, answered by a job, or how the incident was resolved.

A reply starting "Resolved:" records what fixed it: the incident history shows it the
next time a similar incident comes.
"""

from __future__ import annotations

import re

import structlog

from agents.flows import ask
from agents.history import record_resolution
from bot.context import BACKEND_ERRORS, UNAVAILABLE, BotContext
from bot.payloads import MessageEvent
from core.runtime import get_store

log = structlog.get_logger(__name__)


def is_human_thread_reply(message: MessageEvent) -> bool:
    """A new reply by a person inside a thread: not the root, not a bot, not an edit or a deletion."""
    if message.get("subtype") not in (None, "thread_broadcast", "file_share"):
        return False
    if message.get("bot_id") or message.get("app_id") or not message.get("user"):
        return False
    thread_ts = message.get("thread_ts")
    return bool(thread_ts) and thread_ts != message.get("ts") and bool((message.get("text") or "").strip())


RESOLVED = re.compile(r"^\s*\*?resolved\*?\s*[:\-]\s*(?P<what>\S.*)", re.IGNORECASE | re.DOTALL)


def handle_thread_reply(message: MessageEvent, *, channel: str, ctx: BotContext) -> None:
    thread_ts, user = message.get("thread_ts", ""), message.get("user", "")
    try:
        investigation = get_store().find_by_thread(channel, thread_ts)
        if investigation is None:
            return
        if resolved := RESOLVED.match(message.get("text", "")):
            record_resolution(investigation.id, resolved["what"].strip(), by=user, inline=False)
            log.info("resolution_recorded", investigation_id=investigation.id)
            ctx.ephemeral(channel=channel, user=user, thread_ts=thread_ts, text=RESOLUTION_RECORDED)
            return
        # The message ts is the dedupe key: a redelivered event records nothing new.
        follow_up = ask(investigation.id, question=message.get("text", "").strip(), dedupe_key=message.get("ts", ""), asked_by=user)
    except BACKEND_ERRORS:
        log.exception("follow_up_not_recorded", channel=channel)
        ctx.ephemeral(channel=channel, user=user, thread_ts=thread_ts, text=UNAVAILABLE)
        return
    if follow_up is not None:
        log.info("follow_up_recorded", investigation_id=investigation.id, follow_up_id=follow_up.id)


RESOLUTION_RECORDED = "Recorded how this incident was resolved; the next similar incident will show it."
