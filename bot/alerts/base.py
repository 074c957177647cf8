"""What every alert-post parser shares: the parsed post, the parser interface, and text helpers.

A parser reads one tool's Slack layout into an `AlertPost`; the registry
(`bot.alerts.registry`) decides which parser reads a message. Adding a tool is
one module with a class that satisfies `AlertParser` and one line in the table.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from bot.payloads import MessageEvent
from core.alert import Alert

AlertStatus = Literal["triggered", "acknowledged", "resolved"]

_SLACK_LINK = re.compile(r"<([^<>|]+)\|([^<>]*)>")
_BARE_LINK = re.compile(r"<(https?://[^<>|]+)>")
# `• *service:* `checkout``, `- service = checkout`, `service: checkout`, `*Service*\ncheckout`
_LABEL_LINE = re.compile(r"^[\s•\-*>]*`?\*?([A-Za-z_][\w.\-/]{0,62}?)\*?`?\s*(?:=|:\*?|\*?:)\s*\*?`?([^`\n*]{1,200}?)`?\s*$")
_FIELD = re.compile(r"^\*([^*\n]{1,40})\*\s*\n(.+)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class AlertPost:
    """One alert as a tool posted it in Slack, in the terms every tool shares."""

    tool: str
    alert_id: str
    status: AlertStatus
    title: str
    url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # Names that may be catalog services (label values, alarm names), most specific first.
    service_hints: tuple[str, ...] = ()
    urgency: str = "high"
    summary: str = ""

    @property
    def key(self) -> str:
        """A short stable key for this alert (the dedupe ledger keys are bounded in length)."""
        return hashlib.sha256(f"{self.tool}\0{self.alert_id}".encode()).hexdigest()[:24]

    def to_alert(self, *, service: str, source: str, posted_at: datetime | None = None) -> Alert:
        return Alert(
            title=self.title[:500] or f"{self.tool} alert",
            service=service,
            summary=self.summary[:4000] or self.title[:500],
            urgency=self.urgency,
            status=self.status,
            created_at=posted_at or datetime.now(UTC),
            source=source,
            url=self.url,
            incident_id=self.alert_id[:64],
            details={**dict(list(self.labels.items())[:30]), "tool": self.tool, "alert_id": self.alert_id},
        )


class AlertParser(Protocol):
    """One tool's Slack layout. `app_ids` recognise its Slack app; `looks_like` recognises its layout from any poster."""

    @property
    def tool(self) -> str: ...

    @property
    def app_ids(self) -> frozenset[str]: ...

    def looks_like(self, message: MessageEvent) -> bool: ...

    def parse(self, message: MessageEvent) -> AlertPost | None: ...


def message_ids(message: MessageEvent) -> set[str]:
    profile = message.get("bot_profile") or {}
    ids = {message.get("bot_id"), message.get("app_id"), profile.get("app_id"), profile.get("id")}
    return {i for i in ids if i}


def texts(node: Any) -> Iterator[str]:
    """Every human-readable string of a message (text, blocks, attachments, fields), in reading order."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)
    elif isinstance(node, dict):
        if node.get("type") == "link" and isinstance(node.get("url"), str):
            yield f"<{node['url']}|{node.get('text') or node['url']}>"
            return
        if "title" in node and isinstance(node.get("value"), str):
            yield f"*{node.get('title', '')}*\n{node['value']}"
            return
        for key in ("pretext", "author_name", "title", "title_link", "text", "fields", "elements", "blocks", "attachments", "footer"):
            if key in node:
                yield from texts(node[key])


def all_texts(message: MessageEvent) -> list[str]:
    return list(
        texts({"text": message.get("text", ""), "blocks": message.get("blocks", []), "attachments": message.get("attachments", [])})
    )


def first_attachment(message: MessageEvent) -> dict[str, Any]:
    # A payload is only as well-formed as the app that posted it: anything but a list of objects means none.
    attachments = message.get("attachments")
    return attachments[0] if isinstance(attachments, list) and attachments and isinstance(attachments[0], dict) else {}


def unlink(text: str) -> str:
    """Slack's `<url|label>` as its label and `<url>` as the url."""
    return _BARE_LINK.sub(lambda m: m.group(1), _SLACK_LINK.sub(lambda m: m.group(2), text)).strip()


def links(text: str) -> list[str]:
    return [m.group(1) for m in _SLACK_LINK.finditer(text)] + [m.group(1) for m in _BARE_LINK.finditer(text)]


def label_pairs(chunks: list[str]) -> dict[str, str]:
    """`name: value`, `name = value` and `*Name*\\nvalue` pairs in the given texts, first occurrence wins; names lower-cased."""
    found: dict[str, str] = {}
    for chunk in chunks:
        field_match = _FIELD.match(chunk.strip())
        if field_match and "\n" not in field_match.group(2).strip():
            found.setdefault(field_match.group(1).strip().lower(), unlink(field_match.group(2)).strip())
            continue
        for line in chunk.splitlines():
            match = _LABEL_LINE.match(line)
            if match and not match.group(2).strip().startswith("//"):
                found.setdefault(match.group(1).strip().lower(), unlink(match.group(2)).strip())
    return found


def tag_pairs(text: str) -> dict[str, str]:
    """Datadog-style `key:value` tags (`service:checkout, env:prod`)."""
    return {k.lower(): v for k, v in re.findall(r"(?<![\w/])([a-z_][\w.\-/]{0,40}):([\w.\-/]{1,100})(?![\w:/])", text)}


def is_bot_post(message: MessageEvent) -> bool:
    """Posted by an app, an integration or an incoming webhook, not typed by a person."""
    return bool(message.get("bot_id") or message.get("app_id") or message.get("subtype") == "bot_message")
