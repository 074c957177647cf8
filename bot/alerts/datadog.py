"""Datadog monitor notifications from the Datadog Slack app.

The notification links its title to the monitor (`https://app.datadoghq.com/monitors/<id>?group=...`).
Multi-alert monitors title it `[Triggered on {service:checkout,env:prod}] High error rate`,
simple ones `Triggered: High error rate`; recovery comes as `Recovered`. Monitor tags
(`service:checkout env:prod`) follow in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

from bot.alerts.base import AlertPost, AlertStatus, all_texts, first_attachment, is_bot_post, links, tag_pairs, unlink
from bot.payloads import MessageEvent

_MONITOR_URL = re.compile(r"https?://[\w.-]*datadoghq\.(?:com|eu)/monitors/(\d+)[^\s|>]*")
_TITLE = re.compile(
    r"^\s*\[?(Re-Triggered|Triggered|Recovered|Re-Warn|Warn|Re-No Data|No Data|Resolved)(?:\s+on\s+\{([^}]*)\})?\]?:?\s*(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_STATUS: dict[str, AlertStatus] = {"recovered": "resolved", "resolved": "resolved"}


def _title(message: MessageEvent, texts: list[str]) -> str:
    for text in texts:
        for url_and_label in re.finditer(r"<([^<>|]+)\|([^<>]*)>", text):
            if _MONITOR_URL.match(url_and_label.group(1)) and _TITLE.match(url_and_label.group(2)):
                return url_and_label.group(2).strip()
    attachment = first_attachment(message)
    for candidate in (attachment.get("title"), attachment.get("fallback"), message.get("text")):
        if isinstance(candidate, str) and _TITLE.match(unlink(candidate)):
            return unlink(candidate).splitlines()[0].strip()
    return ""


def _group(url: str, in_title: str | None) -> dict[str, str]:
    raw = in_title or (parse_qs(urlparse(url).query).get("group") or [""])[0]
    pairs = [p.split(":", 1) for p in unquote(raw).split(",") if ":" in p]
    return {k.strip().lower(): v.strip() for k, v in pairs}


@dataclass(frozen=True, slots=True)
class DatadogParser:
    tool: str = "datadog"
    app_ids: frozenset[str] = field(default_factory=frozenset)

    def looks_like(self, message: MessageEvent) -> bool:
        return is_bot_post(message) and bool(_MONITOR_URL.search("\n".join(all_texts(message))))

    def parse(self, message: MessageEvent) -> AlertPost | None:
        texts = all_texts(message)
        joined = "\n".join(texts)
        monitor = next((m for t in texts for u in [*links(t), t] for m in [_MONITOR_URL.search(u)] if m), None)
        title = _title(message, texts)
        match = _TITLE.match(title)
        if monitor is None or match is None:
            return None
        group = _group(monitor.group(0), match.group(2))
        tags = {**tag_pairs(unlink(joined.replace(title, ""))), **group}
        status = _STATUS.get(match.group(1).lower(), "triggered")
        group_key = ",".join(f"{k}:{v}" for k, v in sorted(group.items()))
        hints = tuple(tags[k] for k in ("service", "kube_deployment", "app", "kube_namespace", "pod_name", "host") if k in tags)
        return AlertPost(
            tool=self.tool,
            alert_id=f"{monitor.group(1)}/{group_key}",
            status=status,
            title=match.group(3).strip() or title,
            url=monitor.group(0).split("?")[0],
            labels=tags,
            service_hints=hints,
            urgency="low" if match.group(1).lower().endswith("warn") else "high",
            summary=unlink(str(first_attachment(message).get("text") or ""))[:2000],
        )
