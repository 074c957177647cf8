"""`/investigate <service> [what is wrong] [--since 30m|2h|1d] [--at <ISO time or HH:MM>]`, and `/investigate search <text>`.

Instead of a service, an incident of a configured tool: a PagerDuty link or `#1234`, a ServiceNow
`INC0012345`. Its service (mapped to the catalog like PagerDuty posts), time and details come from
the tool, read after the ack.

Validation answers in the ack (Slack shows it only to the caller); once acked,
the listener only queues the start: a worker posts the thread's root message,
records the investigation and queues its run. With Redis down the listener
does that itself, so the request is recorded and runs once the queue is back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import Any

import structlog
from slack_bolt import Ack
from slack_sdk.errors import SlackApiError

from agents.flows import open_investigation, queue_start, window_for
from agents.ticketing import IncidentNotRead, incident_named, names_incident, with_facts
from bot.access import check_access
from bot.blocks import escape
from bot.client import get_client, slack_error
from bot.command_search import SEARCH_USAGE, answer_search, search_text
from bot.context import BACKEND_ERRORS, UNAVAILABLE, BotContext, first_delivery
from bot.payloads import SlashCommand
from bot.service_mapping import catalog_service_for
from core.alert import Alert
from core.catalog import Catalog, CatalogError, parse_duration
from core.models import Source
from core.queue import QueueUnavailable
from core.redaction import redact_text
from core.settings import Settings, get_settings
from core.timeparse import ACCEPTED_TIME_FORMS, parse_at
from integrations.catalog import get_catalog
from integrations.incidents.base import IncidentFacts

log = structlog.get_logger(__name__)

USAGE = (
    "Usage: `/investigate <service> [what is wrong] [--since 30m|2h|1d] [--at <ISO time or HH:MM>]`\n"
    "Example: `/investigate checkout 502s on /pay --since 2h`\n"
    "An incident instead of a service: `/investigate https://acme.pagerduty.com/incidents/Q1ABC`, `#1234`, `INC0012345`\n"
    "Past incidents: `/investigate search <what happened>`"
)


START_QUEUED = "bot.command_investigate.start_queued"
ON_START_FAILURE = "bot.command_investigate.on_start_failure"
# How much of an unforeseen failure's text the caller's ephemeral shows.
_REASON_CHARS = 400


@dataclass(frozen=True, slots=True)
class InvestigateRequest:
    service: str
    what: str
    since_s: int | None
    at: datetime | None
    # The incident link or number given instead of a service, and what its tool said once read.
    incident: str | None = None
    facts: IncidentFacts | None = None


@dataclass(frozen=True, slots=True)
class CommandError:
    text: str


def _usage(catalog: Catalog) -> str:
    known = ", ".join(f"`{n}`" for n in catalog.names()[:20]) or "none yet (set SERVICES_FILE)"
    return f"{USAGE}\nKnown services: {known}"


def parse_investigate(
    text: str, catalog: Catalog, *, now: datetime | None = None, names_incident: Callable[[str], bool] | None = None
) -> InvestigateRequest | CommandError:
    """The request a command text makes, or the ephemeral error that says how to fix it.

    `names_incident` says whether a word is an incident of a configured tool; such a request has no service yet.
    """
    words = text.replace("\u2014", "--").split()
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return CommandError(_usage(catalog))
    options: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, inline = word.partition("=")
        if name in ("--since", "--at"):
            value = inline if eq else (words[i + 1] if i + 1 < len(words) else "")
            if not value:
                return CommandError(f"`{name}` needs a value.\n{USAGE}")
            options[name] = value
            i += 1 if eq else 2
            continue
        if word.startswith("--"):
            return CommandError(f"Unknown option `{escape(word)}`.\n{USAGE}")
        rest.append(word)
        i += 1
    if not rest:
        return CommandError(_usage(catalog))
    try:
        since_s = parse_duration(options["--since"]) if "--since" in options else None
    except ValueError:
        return CommandError(f"`--since {escape(options['--since'])}` is not a duration; use forms like 30m, 2h, 1d.")
    try:
        at = parse_at(options["--at"], now=now) if "--at" in options else None
    except ValueError:
        return CommandError(f"`--at {escape(options['--at'])}` is not a time; use {ACCEPTED_TIME_FORMS}.")
    wanted = rest[0]
    if names_incident is not None and names_incident(wanted):
        return InvestigateRequest(service="", what=" ".join(rest[1:]), since_s=since_s, at=at, incident=wanted)
    service = catalog.resolve(wanted)
    if service is None:
        close = catalog.close_matches(wanted)
        hint = (
            f"Did you mean {', '.join(f'`{c}`' for c in close)}?"
            if close
            else f"Known services: {', '.join(f'`{n}`' for n in catalog.names()[:20]) or 'none (set SERVICES_FILE)'}"
        )
        return CommandError(f"I don't know a service called `{escape(wanted)}`. {hint}")
    return InvestigateRequest(service=service, what=" ".join(rest[1:]), since_s=since_s, at=at)


def resolve_incident(request: InvestigateRequest, catalog: Catalog, settings: Settings) -> InvestigateRequest | CommandError:
    """The request for the incident it names: the catalog service of the incident's service, its time and title."""
    assert request.incident is not None
    shown = escape(request.incident.strip("<>"))
    try:
        facts = incident_named(request.incident, settings)
    except IncidentNotRead as exc:
        return CommandError(f":warning: I could not read the incident {shown}: {escape(str(exc))}")
    if facts is None:
        return CommandError(f":warning: No configured incident tool knows {shown}.")
    service = catalog_service_for(catalog, settings, name=facts.service, service_id=facts.service_id)
    if service is None:
        return CommandError(
            f":warning: Incident {escape(facts.key)} is on {escape(facts.tool)} service `{escape(facts.service or 'unknown')}`, "
            "which no catalog service names: add it to the service's aliases or to PAGERDUTY_SERVICE_MAP."
        )
    return replace(request, service=service, what=request.what or facts.title, at=request.at or facts.opened_at, facts=facts)


def handle_investigate(ack: Ack, command: SlashCommand, ctx: BotContext) -> None:
    user, channel = command.get("user_id", ""), command.get("channel_id", "")
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        ack(f":warning: The service catalog cannot be read: {escape(str(exc))}")
        return
    query = search_text(command.get("text", ""), catalog)
    if query is not None:
        ack(f":mag: Searching past incidents for _{escape(query)}_…" if query else SEARCH_USAGE)
        if query:
            answer_search(query, command, ctx)
        return
    parsed = parse_investigate(command.get("text", ""), catalog, names_incident=lambda word: names_incident(word, ctx.settings))
    if isinstance(parsed, CommandError):
        ack(parsed.text)
        return
    refusal = check_access(ctx.settings, ctx.client, user_id=user, channel_id=channel, what="/investigate")
    if refusal is not None:
        ack(refusal.text)
        return
    if parsed.incident is not None:
        # Reading the incident can take longer than Slack waits for the ack: it is read after it.
        ack(f":hourglass_flowing_sand: Reading incident {escape(parsed.incident.strip('<>'))}; the investigation follows in a thread.")
        resolved = resolve_incident(parsed, catalog, ctx.settings)
        if isinstance(resolved, CommandError):
            ctx.ephemeral(channel=channel, user=user, text=resolved.text)
            return
        hand_off(resolved, command, ctx, catalog)
        return
    ack(
        f":hourglass_flowing_sand: Queued an investigation of *{parsed.service}*. "
        "Progress and the report will follow in a thread in this channel."
    )
    hand_off(parsed, command, ctx, catalog)


def hand_off(request: InvestigateRequest, command: SlashCommand, ctx: BotContext, catalog: Catalog) -> None:
    """After the ack: a worker starts it (`start_queued`); a repeated trigger id is dropped; with Redis down, start here."""
    try:
        queue_start(
            START_QUEUED,
            request,
            dict(command),
            key=f"slack-command:{command['trigger_id']}" if command.get("trigger_id") else None,
            description=f"start {request.service} for {command.get('user_id', '')}",
            on_failure=ON_START_FAILURE,
        )
    except QueueUnavailable:
        start_from_command(request, command, ctx, catalog)


def start_queued(request: InvestigateRequest, command: SlashCommand) -> None:
    """The worker's half of a command: what `start_from_command` does, with this process's Slack client and catalog."""
    start_from_command(request, command, BotContext(settings=get_settings(), client=get_client()), get_catalog())


def on_start_failure(
    job: Any, _connection: Any, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
) -> None:
    """RQ failure callback of `start_queued`: the caller was told "queued" and would otherwise wait for a thread forever.

    The expected failures (Slack, the database, Redis) are told inside the start; this is for the rest, such as a
    catalog edited into an unreadable state between the ack and the start, or a worker that died while starting.
    """
    request, command = job.args
    name = exc_type.__name__ if exc_type is not None else "error"
    reason = "the worker starting it stopped" if name == "AbandonedJobError" else redact_text(f"{name}: {exc}" if exc else name)
    log.error("command_start_failed", service=request.service, reason=reason)
    BotContext(settings=get_settings(), client=get_client()).ephemeral(
        channel=command.get("channel_id", ""),
        user=command.get("user_id", ""),
        text=f":warning: The investigation of *{escape(request.service)}* could not be started: {escape(reason[:_REASON_CHARS])}\n"
        "If no thread about it appeared in this channel, run the command again.",
    )


def start_from_command(request: InvestigateRequest, command: SlashCommand, ctx: BotContext, catalog: Catalog) -> None:
    """After the ack: root message, stored investigation, queued job; failures reach the caller as ephemerals."""
    user, channel = command.get("user_id", ""), command.get("channel_id", "")
    try:
        if command.get("trigger_id") and not first_delivery(f"slack-command:{command['trigger_id']}", "slack_command"):
            return
    except BACKEND_ERRORS:
        log.exception("command_dedupe_failed")
        ctx.ephemeral(channel=channel, user=user, text=UNAVAILABLE)
        return
    what = request.what or f"Investigation of {request.service}"
    try:
        root = ctx.client.chat_postMessage(
            channel=channel,
            text=f":mag: <@{user}> started an investigation of *{request.service}*: {escape(what)}\n"
            "Progress and the report follow in this thread.",
            unfurl_links=False,
        )
    except SlackApiError as exc:
        error = slack_error(exc)
        hint = " Invite me first: `/invite @Incident Responder`." if error in ("not_in_channel", "channel_not_found") else ""
        ctx.ephemeral(
            channel=channel, user=user, text=f":warning: I could not post in this channel ({error}), so nothing was started.{hint}"
        )
        return
    queue_in_thread(
        request,
        title=what,
        user=user,
        channel=str(root["channel"]),
        thread_ts=str(root["ts"]),
        ctx=ctx,
        catalog=catalog,
        via="slash_command",
    )


def queue_in_thread(
    request: InvestigateRequest, *, title: str, user: str, channel: str, thread_ts: str, ctx: BotContext, catalog: Catalog, via: str
) -> None:
    """Record and queue an investigation whose thread exists; a failure is said in that thread or to the requester."""
    window = window_for(catalog, at=request.at, since_s=request.since_s)
    alert = Alert(title=title, summary=request.what, service=request.service, created_at=window.at, source=Source.slack_command.value)
    if request.facts is not None:
        alert = with_facts(alert, [request.facts])
    try:
        investigation, _ = open_investigation(
            alert=alert,
            service=request.service,
            source=Source.slack_command,
            window=window,
            slack_channel=channel,
            slack_thread_ts=thread_ts,
            requested_by=user,
        )
    except QueueUnavailable:
        log.warning("request_queue_unavailable", service=request.service, via=via)
        ctx.reply(
            channel=channel,
            thread_ts=thread_ts,
            text=":warning: The job queue is not answering; the investigation is recorded and starts as soon as it is back.",
        )
        return
    except BACKEND_ERRORS:
        log.exception("request_store_failed", service=request.service, via=via)
        ctx.ephemeral(channel=channel, user=user, text=UNAVAILABLE)
        return
    log.info("investigation_requested", investigation_id=investigation.id, service=request.service, user=user, via=via)
