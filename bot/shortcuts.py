""" "Investigate this message" (a message shortcut) and the modal it opens, which the Home tab's button opens too.

The shortcut is acked at once and answered with `views.open` (Slack's trigger id lives
for 3 s); the submission is validated in its ack (errors show beside the fields) and
then starts the investigation: in the message's thread, or, from the Home tab, in a
new thread of the chosen channel, exactly as `/investigate` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from slack_bolt import Ack
from slack_sdk.errors import SlackApiError

from bot.access import check_access
from bot.blocks import escape
from bot.client import slack_error
from bot.command_investigate import InvestigateRequest, hand_off, queue_in_thread
from bot.context import BACKEND_ERRORS, UNAVAILABLE, BotContext, first_delivery
from bot.modals import ModalContext, ModalRequest, guess_service, investigate_modal, message_text, read_submission
from bot.payloads import BlockActionsPayload, ShortcutPayload, SlashCommand, ViewPayload, ViewSubmission
from core.catalog import Catalog, CatalogError
from integrations.catalog import get_catalog

log = structlog.get_logger(__name__)

SHORTCUT_NAME = "Investigate this message"


def _open(ctx: BotContext, trigger_id: str, view: dict[str, Any]) -> None:
    try:
        ctx.client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("views_open_failed", error=slack_error(exc))


def handle_message_shortcut(ack: Ack, shortcut: ShortcutPayload, ctx: BotContext) -> None:
    ack()
    user = (shortcut.get("user") or {}).get("id", "")
    channel = (shortcut.get("channel") or {}).get("id", "")
    message = shortcut.get("message") or {}
    refusal = check_access(ctx.settings, ctx.client, user_id=user, channel_id=channel, what=SHORTCUT_NAME)
    if refusal is not None:
        ctx.ephemeral(channel=channel, user=user, text=refusal.text)
        return
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        ctx.ephemeral(channel=channel, user=user, text=f":warning: The service catalog cannot be read: {escape(str(exc))}")
        return
    ts = message.get("ts") or shortcut.get("message_ts") or ""
    try:
        at: datetime | None = datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        at = None
    service = guess_service(message, catalog, ctx.settings)
    context = ModalContext(origin="message", channel=channel, thread_ts=message.get("thread_ts") or ts)
    note = None if service else "I could not tell the service from the message; pick it below."
    _open(
        ctx,
        shortcut.get("trigger_id", ""),
        investigate_modal(catalog, context=context, service=service, at=at, what=message_text(message), note=note),
    )


def handle_home_start(ack: Ack, body: BlockActionsPayload, ctx: BotContext) -> None:
    ack()
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        log.error("catalog_invalid", error=str(exc))
        return
    view = investigate_modal(catalog, context=ModalContext(origin="home"), service=None, at=None, what="")
    _open(ctx, body.get("trigger_id", ""), view)


def handle_investigate_submission(ack: Ack, body: ViewSubmission, view: ViewPayload, ctx: BotContext) -> None:
    user = (body.get("user") or {}).get("id", "")
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        ack(response_action="errors", errors={"service": f"The service catalog cannot be read: {exc}"[:150]})
        return
    request = read_submission(dict(view), catalog)
    if not isinstance(request, ModalRequest):
        ack(response_action="errors", errors=request)
        return
    refusal = check_access(ctx.settings, ctx.client, user_id=user, channel_id=request.channel, what=SHORTCUT_NAME)
    if refusal is not None:
        ack(response_action="errors", errors={"channel" if request.thread_ts is None else "service": refusal.text[:150]})
        return
    ack()
    view_key = f"view-{view.get('id', '')}"
    if request.thread_ts is None:
        command = SlashCommand(user_id=user, channel_id=request.channel, trigger_id=view_key)
        hand_off(
            InvestigateRequest(service=request.service, what=request.what, since_s=request.since_s, at=request.at), command, ctx, catalog
        )
    else:
        _start_in_thread(request, user=user, view_key=view_key, ctx=ctx, catalog=catalog)


def _start_in_thread(request: ModalRequest, *, user: str, view_key: str, ctx: BotContext, catalog: Catalog) -> None:
    """The investigation lives in the thread of the message the shortcut was used on."""
    assert request.thread_ts is not None
    try:
        if not first_delivery(f"slack-view:{view_key}", "slack_view"):
            return
    except BACKEND_ERRORS:
        log.exception("view_dedupe_failed")
        ctx.ephemeral(channel=request.channel, user=user, text=UNAVAILABLE)
        return
    what = request.what.splitlines()[0][:200] if request.what else f"Investigation of {request.service}"
    posted = ctx.reply(
        channel=request.channel,
        thread_ts=request.thread_ts,
        text=f":mag: <@{user}> started an investigation of *{request.service}* from this message. Progress and the report follow here.",
    )
    if posted is None:
        ctx.ephemeral(
            channel=request.channel,
            user=user,
            text=":warning: I could not post in that thread, so nothing was started. Invite me first: `/invite @Incident Responder`.",
        )
        return
    queue_in_thread(
        InvestigateRequest(service=request.service, what=request.what, since_s=request.since_s, at=request.at),
        title=what,
        user=user,
        channel=request.channel,
        thread_ts=request.thread_ts,
        ctx=ctx,
        catalog=catalog,
        via="message_shortcut",
    )
