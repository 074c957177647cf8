"""Reads what the PagerDuty Slack app posts: the incident behind a message, from its text, blocks and attachments.

The app has changed its layout over the years (attachment fields, then Block Kit
inside attachments), so the parser collects every piece of text a message holds
and looks for the few things it needs in all of them, instead of trusting one layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.payloads import MessageEvent

# The PagerDuty app's id in every Slack workspace (slack.com/marketplace/A1FKYAUUX-pagerduty).
PAGERDUTY_APP_ID = "A1FKYAUUX"

_INCIDENT_URL = re.compile(r"https?://[\w.-]+\.pagerduty\.com/incidents/([A-Za-z0-9]+)[^\s|>]*")
_SERVICE_URL = re.compile(r"https?://[\w.-]+\.pagerduty\.com/(?:service-directory|services)/([A-Za-z0-9]+)")
_SLACK_LINK = re.compile(r"<([^<>|]+)\|([^<>]*)>")
_STATUS = re.compile(r"\b(triggered|acknowledged|resolved|reopened)\b", re.IGNORECASE)
_URGENCY = re.compile(r"urgency\W{0,4}\s*(high|low)\b", re.IGNORECASE)
_NUMBER_PREFIX = re.compile(r"^\s*\[?#(\d+)\]?[:\s-]*")
_LABEL_VALUE = re.compile(r"^\W*([A-Za-z ]{3,20}?)\W*\n(.+)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class PagerDutyPost:
    incident_id: str
    url: str
    status: str
    title: str
    number: str | None = None
    service_name: str | None = None
    service_id: str | None = None
    urgency: str = "high"


def _texts(node: Any) -> Iterator[str]:
    """Every human-readable string in a message, blocks or attachments, in reading order."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)
    elif isinstance(node, dict):
        if node.get("type") == "link" and isinstance(node.get("url"), str):
            # rich_text links carry their label separately; rebuild Slack's <url|label> form.
            yield f"<{node['url']}|{node.get('text') or node['url']}>"
            return
        if node.get("type") == "field" or ("title" in node and "value" in node and isinstance(node.get("value"), str)):
            yield f"*{node.get('title', '')}*\n{node.get('value', '')}"
            return
        for key in ("pretext", "title", "title_link", "text", "fields", "elements", "blocks", "attachments", "fallback", "footer"):
            if key in node:
                yield from _texts(node[key])


def _fields(texts: list[str]) -> dict[str, str]:
    """Label/value pairs such as `*Service*\\n<url|Checkout>` (block fields or attachment fields)."""
    found: dict[str, str] = {}
    for text in texts:
        match = _LABEL_VALUE.match(text)
        if match:
            found.setdefault(match.group(1).strip().lower(), match.group(2).strip())
    return found


def _unlink(text: str) -> str:
    return _SLACK_LINK.sub(lambda m: m.group(2), text).strip()


def parse_pagerduty_message(message: MessageEvent) -> PagerDutyPost | None:
    """The incident a PagerDuty app message is about; None when it names no incident."""
    texts = list(
        _texts({"text": message.get("text", ""), "blocks": message.get("blocks", []), "attachments": message.get("attachments", [])})
    )
    joined = "\n".join(texts)
    incident = _INCIDENT_URL.search(joined)
    if incident is None:
        return None
    incident_id = incident.group(1).upper()
    title = ""
    for url, label in _SLACK_LINK.findall(joined):
        if f"/incidents/{incident.group(1)}" in url and label.strip():
            title = label.strip()
            break
    if not title:
        attachments = message.get("attachments")
        attachment_titles = (a.get("title") for a in attachments if isinstance(a, dict)) if isinstance(attachments, list) else ()
        text = message.get("text")
        title = next((t for t in attachment_titles if isinstance(t, str) and t), "") or (text if isinstance(text, str) else "")
    title = _unlink(title)
    number = None
    if match := _NUMBER_PREFIX.match(title):
        number, title = match.group(1), title[match.end() :].strip()
    status = _STATUS.search(joined)
    urgency = _URGENCY.search(joined)
    fields = _fields(texts)
    service_field = fields.get("service") or fields.get("impacted service") or ""
    service_url = _SERVICE_URL.search(service_field) or _SERVICE_URL.search(joined)
    return PagerDutyPost(
        incident_id=incident_id,
        url=incident.group(0),
        status=status.group(1).lower() if status else "triggered",
        title=title[:500],
        number=number,
        service_name=_unlink(service_field) or None,
        service_id=service_url.group(1) if service_url else None,
        urgency=urgency.group(1).lower() if urgency else "high",
    )
