"""PagerDuty app posts in watched channels: a triggered incident starts one investigation in that message's thread.

The incident id is the key: the same incident posted again, or its message edited
to acknowledged or resolved, finds the investigation the first post started.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from agents.flows import open_investigation, window_for
from bot.context import BACKEND_ERRORS, BotContext, first_delivery
from bot.pagerduty_post import PagerDutyPost, parse_pagerduty_message
from bot.payloads import MessageEvent
from bot.service_mapping import catalog_service_for, how_to_map
from core.catalog import CatalogError
from core.models import Source
from core.queue import QueueUnavailable
from core.runtime import get_store
from integrations.catalog import get_catalog

log = structlog.get_logger(__name__)

RESOLVED_NOTE = ":white_check_mark: PagerDuty marked incident {number}resolved. The investigation and its report stay in this thread."


def _posted_at(ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        return datetime.now(UTC)


def handle_alert_post(message: MessageEvent, *, channel: str, ctx: BotContext) -> None:
    post = parse_pagerduty_message(message)
    if post is None:
        log.info("pagerduty_message_without_incident", channel=channel)
        return
    root_ts = message.get("thread_ts") or message.get("ts", "")
    try:
        if post.status == "resolved":
            _note_resolved(post, channel=channel, root_ts=root_ts, ctx=ctx)
        elif post.status in ("triggered", "reopened"):
            _start(post, channel=channel, root_ts=root_ts, ctx=ctx)
        # acknowledged: the investigation (if any) carries on; nothing to say.
    except QueueUnavailable:
        log.warning("alert_post_queue_unavailable", incident_id=post.incident_id)
    except BACKEND_ERRORS:
        # Slack redelivers unacknowledged events only; this one was acked, so the next edit or the webhook picks it up.
        log.exception("alert_post_store_failed", incident_id=post.incident_id)


def _start(post: PagerDutyPost, *, channel: str, root_ts: str, ctx: BotContext) -> None:
    store = get_store()
    if store.find_by_pagerduty(post.incident_id) is not None:
        return
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        log.error("catalog_invalid", error=str(exc))
        return
    service = catalog_service_for(catalog, ctx.settings, name=post.service_name, service_id=post.service_id)
    if service is None:
        if first_delivery(f"pagerduty-unmapped:{post.incident_id}", "pagerduty_unmapped"):
            ctx.reply(channel=channel, thread_ts=root_ts, text=how_to_map(name=post.service_name, service_id=post.service_id))
        return
    at = _posted_at(root_ts)
    investigation, created = open_investigation(
        alert=post.to_alert(service=service, posted_at=at),
        service=service,
        source=Source.pagerduty_post,
        window=window_for(catalog, at=at),
        slack_channel=channel,
        slack_thread_ts=root_ts,
    )
    if not created and investigation.slack_thread_ts is None:
        # The webhook got there first; the thread of the PagerDuty post becomes its home.
        store.update(investigation.id, slack_channel=channel, slack_thread_ts=root_ts)
    log.info("pagerduty_post_investigation", investigation_id=investigation.id, incident_id=post.incident_id, created=created)


def _note_resolved(post: PagerDutyPost, *, channel: str, root_ts: str, ctx: BotContext) -> None:
    investigation = get_store().find_by_pagerduty(post.incident_id)
    if investigation is None:
        return
    if first_delivery(f"pagerduty-resolved:{post.incident_id}", "pagerduty_resolved"):
        number = f"#{post.number} " if post.number else ""
        ctx.reply(
            channel=investigation.slack_channel or channel,
            thread_ts=investigation.slack_thread_ts or root_ts,
            text=RESOLVED_NOTE.format(number=number),
        )
