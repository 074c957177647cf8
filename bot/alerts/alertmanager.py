"""Prometheus Alertmanager's `slack_configs` posts (incoming webhook or bot token).

The default template titles the attachment `[FIRING:2] HighErrorRate (checkout prod)`
(group label values, then the other common label values) and links it to
Alertmanager; a `[RESOLVED] ...` post with the same rest of the title follows
when `send_resolved` is on. Popular text templates add `*Details:*` lines such as
`• *service:* `checkout``, which give label names as well, and a `*Graph:*` link to the
rule's generatorURL, kept whole as `generator_url`: it carries the rule's PromQL (`g0.expr`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.alerts.base import AlertPost, AlertStatus, all_texts, first_attachment, is_bot_post, label_pairs, links, unlink
from bot.payloads import MessageEvent

TITLE = re.compile(r"^\s*\[(FIRING|RESOLVED)(?::(\d+))?(?:,\s*RESOLVED:\d+)?\]\s*(.*)$", re.IGNORECASE | re.DOTALL)
_GROUP_VALUES = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


def title_of(message: MessageEvent) -> str:
    attachment = first_attachment(message)
    for candidate in (attachment.get("title"), attachment.get("fallback"), message.get("text")):
        if isinstance(candidate, str) and TITLE.match(unlink(candidate)):
            return unlink(candidate).split(" | ")[0].strip()
    return ""


def status_of(word: str) -> AlertStatus:
    return "resolved" if word.upper() == "RESOLVED" else "triggered"


def hints_from_title(rest: str) -> tuple[str, ...]:
    """`HighErrorRate (checkout prod)` -> ("checkout", "prod", "HighErrorRate"): label values before the group name."""
    words: list[str] = []
    match = _GROUP_VALUES.match(rest)
    head, values = (match.group(1), match.group(2)) if match else (rest, "")
    words += values.split()
    words += head.split()
    return tuple(dict.fromkeys(w.strip(",;") for w in words if w.strip(",;")))


@dataclass(frozen=True, slots=True)
class AlertmanagerParser:
    tool: str = "alertmanager"
    app_ids: frozenset[str] = field(default_factory=frozenset)

    def looks_like(self, message: MessageEvent) -> bool:
        return is_bot_post(message) and bool(title_of(message))

    def parse(self, message: MessageEvent) -> AlertPost | None:
        title = title_of(message)
        match = TITLE.match(title)
        if match is None:
            return None
        rest = match.group(3).strip()
        chunks = all_texts(message)
        labels = label_pairs(chunks[1:]) if len(chunks) > 1 else {}
        # `*Graph:* <generatorURL|...>` lines link the rule's query: kept whole, the metric sources read what it measures.
        graph = next((link for chunk in chunks for link in links(chunk) if "g0.expr=" in link), None)
        if graph:
            labels["generator_url"] = graph
        attachment = first_attachment(message)
        link = attachment.get("title_link")
        summary = unlink(str(attachment.get("text") or ""))
        return AlertPost(
            tool=self.tool,
            alert_id=rest or title,
            status=status_of(match.group(1)),
            title=rest or title,
            url=link if isinstance(link, str) and link else None,
            labels=labels,
            service_hints=hints_from_title(rest),
            urgency="low" if labels.get("severity", "").lower() in ("info", "warning", "low") else "high",
            summary=summary,
        )
