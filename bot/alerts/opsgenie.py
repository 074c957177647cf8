"""Opsgenie's Slack app: one message per alert, edited in place as it is acknowledged and closed.

The attachment title is `#<tiny id>: <message>` linked to `https://<org>.app.opsgenie.com/alert/detail/<uuid>/details`;
fields carry Priority, Tags (`service:checkout, env:prod` or plain words) and Routed Teams; the
status shows as `Acknowledged`/`Acked by ...` and `Closed`/`Closed by ...` after the edits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.alerts.base import AlertPost, AlertStatus, all_texts, first_attachment, is_bot_post, label_pairs, tag_pairs, unlink
from bot.payloads import MessageEvent

_ALERT_URL = re.compile(r"https?://[\w.-]*opsgenie\.com/alert/detail/([0-9a-f-]{8,})[^\s|>]*", re.IGNORECASE)
_TINY = re.compile(r"^\s*#(\d+)\s*:?\s*")
_STATUS = re.compile(r"\b(closed|acknowledged|acked|open|new alert|created)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OpsgenieParser:
    tool: str = "opsgenie"
    # Opsgenie's Slack app (slack.com/marketplace, app "Opsgenie"); add your workspace's id if it differs.
    app_ids: frozenset[str] = field(default_factory=frozenset)

    def looks_like(self, message: MessageEvent) -> bool:
        return is_bot_post(message) and bool(_ALERT_URL.search("\n".join(all_texts(message))))

    def parse(self, message: MessageEvent) -> AlertPost | None:
        texts = all_texts(message)
        joined = "\n".join(texts)
        alert_url = _ALERT_URL.search(joined)
        if alert_url is None:
            return None
        attachment = first_attachment(message)
        title = (unlink(str(attachment.get("title") or message.get("text") or "")).splitlines() or [""])[0]
        tiny = _TINY.match(title)
        if tiny:
            title = title[tiny.end() :].strip()
        fields = label_pairs([t for t in texts if t.startswith("*")])
        tags = tag_pairs(fields.get("tags", "").replace(",", " "))
        plain_tags = [t.strip() for t in fields.get("tags", "").split(",") if t.strip() and ":" not in t]
        # Only the app's own wording (pretext, message text, Status field): a description may well say "connection closed".
        said = " ".join([str(attachment.get("pretext") or ""), str(message.get("text") or ""), fields.get("status", "")])
        words = [m.group(1).lower() for m in _STATUS.finditer(unlink(said))]
        status: AlertStatus = "resolved" if "closed" in words else "acknowledged" if {"acknowledged", "acked"} & set(words) else "triggered"
        priority = fields.get("priority", "P3").upper()
        hints = tuple(tags[k] for k in ("service", "app", "namespace", "pod", "instance") if k in tags)
        return AlertPost(
            tool=self.tool,
            alert_id=alert_url.group(1).lower(),
            status=status,
            title=title,
            url=alert_url.group(0),
            labels={**tags, **{k: v for k, v in fields.items() if k in ("priority", "source", "entity")}},
            service_hints=(*hints, *([fields["entity"]] if fields.get("entity") else []), *plain_tags),
            urgency="high" if priority in ("P1", "P2") else "low",
            summary=unlink(str(attachment.get("text") or ""))[:2000],
        )
