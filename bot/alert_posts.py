"""Alert posts in watched channels (PagerDuty, Datadog, Grafana, Alertmanager, Opsgenie, CloudWatch via AWS Chatbot).

A firing alert starts one investigation in its message's thread. The alert id is the
key: the same alert posted again, or its message edited, finds the investigation the
first post started (PagerDuty by the incident id on the investigation, other tools
through `bot.alerts.ledger`); a resolved post or edit says so once in that thread.
An alert that joins a running investigation of the same service (a storm) gets one
short reply in its own thread pointing at the investigation that covers it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from slack_sdk.errors import SlackApiError

from agents.flows import is_follower, open_investigation, window_for
from bot.alerts import ledger
from bot.alerts.base import AlertPost
from bot.blocks import report_url
from bot.context import BACKEND_ERRORS, BotContext, first_delivery
from bot.service_mapping import catalog_service_for_alert, how_to_map_alert
from core.catalog import CatalogError
from core.models import Investigation, Source
from core.queue import QueueUnavailable
from core.runtime import get_store
from integrations.catalog import get_catalog

log = structlog.get_logger(__name__)

TOOL_NAMES = {
    "pagerduty": "PagerDuty",
    "datadog": "Datadog",
    "grafana": "Grafana",
    "alertmanager": "Alertmanager",
    "opsgenie": "Opsgenie",
    "cloudwatch": "CloudWatch",
}
RESOLVED_NOTE = ":white_check_mark: PagerDuty marked incident {number}resolved. The investigation and its report stay in this thread."
TOOL_RESOLVED_NOTE = ":white_check_mark: {tool} reports this alert resolved. The investigation and its report stay in this thread."
STORM_NOTE = (
    ":link: Part of an alert storm on *{service}*: investigation `{lead}` already covers it, see {where}. No separate investigation."
)


def _posted_at(ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        return datetime.now(UTC)


def handle_alert_post(post: AlertPost, *, channel: str, root_ts: str, ctx: BotContext) -> None:
    try:
        if post.status == "resolved":
            _note_resolved(post, channel=channel, root_ts=root_ts, ctx=ctx)
        elif post.status == "triggered":
            _start(post, channel=channel, root_ts=root_ts, ctx=ctx)
        # acknowledged: the investigation (if any) carries on; nothing to say.
    except QueueUnavailable:
        log.warning("alert_post_queue_unavailable", tool=post.tool, alert_id=post.alert_id)
    except BACKEND_ERRORS:
        # Slack redelivers unacknowledged events only; this one was acked, so the next edit (or the webhook) picks it up.
        log.exception("alert_post_store_failed", tool=post.tool, alert_id=post.alert_id)


def _start(post: AlertPost, *, channel: str, root_ts: str, ctx: BotContext) -> None:
    store = get_store()
    pagerduty = post.tool == "pagerduty"
    if pagerduty and store.find_by_pagerduty(post.alert_id) is not None:
        return
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        log.error("catalog_invalid", error=str(exc))
        return
    service = catalog_service_for_alert(catalog, ctx.settings, post)
    if service is None:
        unmapped = f"pagerduty-unmapped:{post.alert_id}" if pagerduty else f"alert-unmapped:{post.key}"
        if first_delivery(unmapped, "pagerduty_unmapped" if pagerduty else "alert_unmapped"):
            ctx.reply(channel=channel, thread_ts=root_ts, text=how_to_map_alert(post))
        return
    ledger_key = None
    if not pagerduty:
        ledger_key = ledger.claim_start(post)
        if ledger_key is None:
            return
    at = _posted_at(root_ts)
    source = Source.pagerduty_post if pagerduty else Source.alert_post
    investigation, created = open_investigation(
        alert=post.to_alert(service=service, source=source.value, posted_at=at),
        service=service,
        source=source,
        window=window_for(catalog, at=at),
        slack_channel=channel,
        slack_thread_ts=root_ts,
    )
    if ledger_key is not None:
        ledger.link(ledger_key, investigation.id)
    if not created and investigation.slack_thread_ts is None:
        # The webhook got there first; the thread of the PagerDuty post becomes its home.
        store.update(investigation.id, slack_channel=channel, slack_thread_ts=root_ts)
    if created and is_follower(investigation):
        _point_to_lead(investigation, channel=channel, root_ts=root_ts, ctx=ctx)
    log.info("alert_post_investigation", investigation_id=investigation.id, tool=post.tool, alert_id=post.alert_id, created=created)


def _point_to_lead(follower: Investigation, *, channel: str, root_ts: str, ctx: BotContext) -> None:
    """One reply in a coalesced alert's thread: which investigation covers it, and where to follow it."""
    lead = get_store().get(follower.parent_id or "")
    if lead is None or not first_delivery(f"storm-note:{follower.id}", "storm_note"):
        return
    where = f"<{report_url(ctx.settings.public_url, lead.id)}|the report>"
    if lead.slack_channel and lead.slack_thread_ts:
        try:
            permalink = ctx.client.chat_getPermalink(channel=lead.slack_channel, message_ts=lead.slack_thread_ts).get("permalink")
            if permalink:
                where = f"<{permalink}|its thread> (and {where})"
        except SlackApiError as exc:
            log.warning("storm_permalink_failed", error=exc.response.get("error"))
    ctx.reply(channel=channel, thread_ts=root_ts, text=STORM_NOTE.format(service=lead.service, lead=lead.id, where=where))


def _note_resolved(post: AlertPost, *, channel: str, root_ts: str, ctx: BotContext) -> None:
    store = get_store()
    if post.tool == "pagerduty":
        investigation = store.find_by_pagerduty(post.alert_id)
        if investigation is None or not first_delivery(f"pagerduty-resolved:{post.alert_id}", "pagerduty_resolved"):
            return
        number = post.labels.get("number")
        text = RESOLVED_NOTE.format(number=f"#{number} " if number else "")
    else:
        current = ledger.current_investigation(post)
        if current is None or current[1] is None:
            return
        investigation = store.get(current[1])
        if investigation is None or not ledger.claim_resolved(current[0]):
            return
        text = TOOL_RESOLVED_NOTE.format(tool=TOOL_NAMES.get(post.tool, post.tool))
    ctx.reply(channel=investigation.slack_channel or channel, thread_ts=investigation.slack_thread_ts or root_ts, text=text)
