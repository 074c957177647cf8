"""The table of recognisers: which parser reads a message, by the posting app's id first and its layout second.

Add a tool: write a parser (see `bot.alerts.base.AlertParser`) and put it in PARSERS.
Order matters for layouts that look alike: Grafana's posts have Alertmanager's title,
so Grafana is tried first.
"""

from __future__ import annotations

from bot.alerts.alertmanager import AlertmanagerParser
from bot.alerts.base import AlertParser, AlertPost, is_bot_post, message_ids
from bot.alerts.cloudwatch import CloudWatchParser
from bot.alerts.datadog import DatadogParser
from bot.alerts.grafana import GrafanaParser
from bot.alerts.opsgenie import OpsgenieParser
from bot.alerts.pagerduty import PagerDutyParser
from bot.payloads import MessageEvent

PAGERDUTY = PagerDutyParser()
PARSERS: tuple[AlertParser, ...] = (
    PAGERDUTY,
    DatadogParser(),
    OpsgenieParser(),
    CloudWatchParser(),
    GrafanaParser(),
    AlertmanagerParser(),
)


def parser_for(message: MessageEvent, *, pagerduty_ids: list[str] | None = None) -> AlertParser | None:
    """The parser for a message posted by an alerting tool; None for people and for apps we do not read."""
    ids = message_ids(message)
    if pagerduty_ids and ids & set(pagerduty_ids):
        # SLACK_PAGERDUTY_BOT_IDS replaces the marketplace id (a PagerDuty app installed under another id).
        return PAGERDUTY
    for parser in PARSERS:
        if parser is PAGERDUTY and pagerduty_ids:
            continue
        if ids & parser.app_ids:
            return parser
    if not is_bot_post(message):
        return None
    return next((p for p in PARSERS if p.looks_like(message)), None)


def recognise(message: MessageEvent, *, pagerduty_ids: list[str] | None = None) -> tuple[AlertParser, AlertPost | None] | None:
    """(parser, the alert it read or None when the post names no alert), or None when no parser claims the message."""
    parser = parser_for(message, pagerduty_ids=pagerduty_ids)
    if parser is None:
        return None
    return parser, parser.parse(message)
