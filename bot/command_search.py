"""`/investigate search <text>`: past incidents like this one, answered only to the person who asked."""

from __future__ import annotations

import structlog

from agents import history
from agents.report import SimilarIncident
from bot.blocks import escape
from bot.context import BotContext
from bot.payloads import SlashCommand
from core.catalog import Catalog
from integrations.history.qdrant_index import IndexUnavailable

log = structlog.get_logger(__name__)

MAX_SHOWN = 5
SEARCH_USAGE = "Usage: `/investigate search <what happened>`, e.g. `/investigate search connection pool exhausted on checkout`"


def search_text(text: str, catalog: Catalog) -> str | None:
    """The words to search for when the command is a search (a service called `search` keeps its name)."""
    first, _, rest = text.strip().partition(" ")
    if first.lower() != "search" or catalog.resolve(first) is not None:
        return None
    return rest.strip()


def answer_search(query: str, command: SlashCommand, ctx: BotContext) -> None:
    """After the ack: the search, and its answer as an ephemeral message."""
    user, channel = command.get("user_id", ""), command.get("channel_id", "")
    try:
        found = history.search(query, limit=MAX_SHOWN)
    except IndexUnavailable as exc:
        log.warning("incident_search_unavailable", reason=str(exc))
        ctx.ephemeral(channel=channel, user=user, text=":warning: The incident history is not answering right now; try again shortly.")
        return
    ctx.ephemeral(channel=channel, user=user, text=search_answer(query, found))


def search_answer(query: str, found: list[SimilarIncident]) -> str:
    if not found:
        return f"No past incidents match _{escape(query)}_."
    lines = [f"*Past incidents like* _{escape(query)}_:"]
    for item in found:
        when = (item.date or "")[:10]
        what = escape(item.title or item.root_cause or item.id)
        link = f"<{item.url}|{what}>" if item.url else what
        resolved = f" — resolved: {escape(item.resolution)}" if item.resolution else ""
        category = (item.category or "unknown").replace("_", " ")
        lines.append(f"• {when} *{escape(item.service or '')}* {category}: {link} ({item.score:.2f}){resolved}")
    return "\n".join(lines)
