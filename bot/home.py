"""The App Home tab: the user's recent investigations, those running now, and a button that opens the start modal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from sqlmodel import col, select

from bot.blocks import clip, escape, report_url
from bot.client import slack_error
from bot.context import BACKEND_ERRORS, BotContext
from bot.modals import ACTION_HOME_START, MAX_BLOCKS
from bot.payloads import AppHomeOpenedEvent
from core.models import Investigation, Status
from core.runtime import get_store

log = structlog.get_logger(__name__)

LISTED = 10
_ICONS = {"queued": ":hourglass_flowing_sand:", "done": ":white_check_mark:", "degraded": ":warning:", "failed": ":x:"}


def _line(row: Investigation, public_url: str) -> str:
    icon = _ICONS.get(row.status, ":mag:")
    when = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = escape(clip(row.title or row.service, 80)).replace("|", "/")
    return f"{icon} <{report_url(public_url, row.id)}|{title}> · *{escape(row.service)}* · {row.status} · {when}"


def _list_section(heading: str, rows: list[Investigation], public_url: str, empty: str) -> dict[str, Any]:
    lines = [_line(r, public_url) for r in rows] or [f"_{empty}_"]
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(f"*{heading}*\n" + "\n".join(lines), 3000)}}


def home_view(*, mine: list[Investigation], running: list[Investigation], public_url: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Incident Responder"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Investigations of alerts from logs, changes, metrics and runbooks, reported in Slack threads.",
            },
        },
        {
            "type": "actions",
            "block_id": "home_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_HOME_START,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Start an investigation"},
                    "value": "home",
                }
            ],
        },
        {"type": "divider"},
        _list_section("Running now", running, public_url, "Nothing is running."),
        {"type": "divider"},
        _list_section("Your recent investigations", mine, public_url, "You have not started any yet."),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Updated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · <{public_url}|dashboard>"}],
        },
    ]
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def recent_for(user_id: str, limit: int = LISTED) -> tuple[list[Investigation], list[Investigation]]:
    """(the user's newest investigations, the newest ones still running)."""
    active = [s.value for s in Status if not s.finished]
    with get_store().session() as s:
        mine = s.exec(
            select(Investigation).where(Investigation.requested_by == user_id).order_by(col(Investigation.created_at).desc()).limit(limit)
        ).all()
        running = s.exec(
            select(Investigation)
            .where(col(Investigation.status).in_(active), col(Investigation.parent_id).is_(None))
            .order_by(col(Investigation.created_at).desc())
            .limit(limit)
        ).all()
    return list(mine), list(running)


def handle_app_home_opened(event: AppHomeOpenedEvent, ctx: BotContext) -> None:
    """Acked by Bolt first; then the Home tab is published from stored state (views.publish)."""
    user = event.get("user", "")
    if event.get("tab", "home") != "home" or not user:
        return
    try:
        mine, running = recent_for(user)
    except BACKEND_ERRORS:
        log.exception("home_lookup_failed")
        mine, running = [], []
    try:
        ctx.client.views_publish(user_id=user, view=home_view(mine=mine, running=running, public_url=ctx.settings.public_url))
    except SlackApiError as exc:
        log.warning("home_publish_failed", error=slack_error(exc))
