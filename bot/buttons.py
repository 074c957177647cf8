"""Report buttons: Create Jira and Create <tool> incident (one per investigation, however often clicked) and Re-run."""

from __future__ import annotations

import structlog
from slack_bolt import Ack

from agents.flows import request_jira, rerun
from agents.ticketing import request_ticket, tool_label
from bot.access import check_access
from bot.blocks import ACTION_CREATE_TICKET
from bot.context import BACKEND_ERRORS, UNAVAILABLE, BotContext, first_delivery
from bot.payloads import BlockAction, BlockActionsPayload, ButtonValue
from core.store import NotFound

log = structlog.get_logger(__name__)


class _Click:
    """Who clicked what, where: the parts of a block_actions payload every button handler reads."""

    def __init__(self, body: BlockActionsPayload) -> None:
        self.user = (body.get("user") or {}).get("id", "")
        self.channel = (body.get("channel") or {}).get("id", "")
        message = body.get("message") or {}
        self.thread_ts = message.get("thread_ts") or message.get("ts")
        actions = body.get("actions") or [BlockAction()]
        self.action = actions[0]
        self.value = ButtonValue.decode(self.action.get("value"))

    @property
    def dedupe_key(self) -> str:
        return f"slack-action:{self.action.get('action_ts', '')}:{self.user}"


def _begin(body: BlockActionsPayload, ctx: BotContext, *, what: str) -> _Click | None:
    """Dedupe and authorise a click; None when there is nothing (more) to do."""
    click = _Click(body)
    if click.value is None:
        log.warning("button_without_investigation", action_id=click.action.get("action_id"))
        return None
    try:
        if not first_delivery(click.dedupe_key, "slack_action"):
            return None
    except BACKEND_ERRORS:
        ctx.ephemeral(channel=click.channel, user=click.user, thread_ts=click.thread_ts, text=UNAVAILABLE)
        return None
    refusal = check_access(ctx.settings, ctx.client, user_id=click.user, channel_id=click.channel, what=what)
    if refusal is not None:
        ctx.ephemeral(channel=click.channel, user=click.user, thread_ts=click.thread_ts, text=refusal.text)
        return None
    return click


def handle_create_jira(ack: Ack, body: BlockActionsPayload, ctx: BotContext) -> None:
    ack()
    click = _begin(body, ctx, what="Create Jira")
    if click is None or click.value is None:
        return
    try:
        link, claimed = request_jira(click.value.investigation_id, requested_by=click.user)
    except NotFound:
        text = "That investigation no longer exists."
    except BACKEND_ERRORS:
        text = UNAVAILABLE
    else:
        if claimed:
            text = ":hourglass_flowing_sand: Creating the Jira ticket; its link will appear in this thread."
        elif link.key:
            text = (
                f":ticket: This investigation already has a ticket: <{link.url}|{link.key}>"
                if link.url
                else f":ticket: This investigation already has a ticket: {link.key}"
            )
        else:
            text = ":hourglass_flowing_sand: A Jira ticket for this investigation is already being created."
    ctx.ephemeral(channel=click.channel, user=click.user, thread_ts=click.thread_ts, text=text)


def handle_create_ticket(ack: Ack, body: BlockActionsPayload, ctx: BotContext) -> None:
    ack()
    click = _begin(body, ctx, what="Create incident")
    if click is None or click.value is None:
        return
    tool = str(click.action.get("action_id", "")).removeprefix(ACTION_CREATE_TICKET)
    label = tool_label(tool)
    try:
        claim, claimed = request_ticket(click.value.investigation_id, tool, requested_by=click.user)
    except NotFound:
        text = "That investigation no longer exists."
    except BACKEND_ERRORS:
        text = UNAVAILABLE
    else:
        if claimed:
            text = f":hourglass_flowing_sand: Creating the {label} incident; its link will appear in this thread."
        elif claim.key:
            shown = f"<{claim.url}|{claim.key}>" if claim.url else claim.key
            text = f":ticket: This investigation already has a {label} incident: {shown}"
        else:
            text = f":hourglass_flowing_sand: A {label} incident for this investigation is already being created."
    ctx.ephemeral(channel=click.channel, user=click.user, thread_ts=click.thread_ts, text=text)


def handle_rerun(ack: Ack, body: BlockActionsPayload, ctx: BotContext) -> None:
    ack()
    click = _begin(body, ctx, what="Re-run")
    if click is None or click.value is None:
        return
    try:
        new = rerun(click.value.investigation_id, requested_by=click.user)
    except NotFound:
        text = "That investigation no longer exists."
    except BACKEND_ERRORS:
        text = UNAVAILABLE
    else:
        text = f":arrows_counterclockwise: Re-running as `{new.id}`; progress follows in this thread."
    ctx.ephemeral(channel=click.channel, user=click.user, thread_ts=click.thread_ts, text=text)


def handle_link_button(ack: Ack) -> None:
    # URL buttons open in the browser; Slack still sends the click and expects an ack.
    ack()
