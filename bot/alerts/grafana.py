"""Grafana alerting's Slack contact point.

The title is Grafana's `default.title` (the Alertmanager form, `[FIRING:1] HighLatency (checkout)`),
the text its `default.message`: `**Firing**`, `Value: ...`, `Labels:` with ` - name = value` lines,
`Annotations:`, then `Source:`, `Silence:`, `Dashboard:` and `Panel:` links. The footer
names Grafana (`Grafana v10.4.1`), which is how it is told apart from Alertmanager.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.alerts.alertmanager import TITLE, hints_from_title, status_of, title_of
from bot.alerts.base import AlertPost, all_texts, first_attachment, is_bot_post, unlink
from bot.payloads import MessageEvent

_LABEL = re.compile(r"^\s*-\s*([\w.\-/]+)\s*=\s*(.+?)\s*$")
_RULE_URL = re.compile(r"https?://\S+?/alerting/grafana/([\w-]+)/view\S*")


def _is_grafana(message: MessageEvent) -> bool:
    attachment = first_attachment(message)
    footer = str(attachment.get("footer") or "")
    icon = str(attachment.get("footer_icon") or "")
    joined = "\n".join(all_texts(message))
    return footer.lower().startswith("grafana") or "grafana.com" in icon or bool(_RULE_URL.search(joined))


def _section_labels(text: str, section: str) -> dict[str, str]:
    """The ` - name = value` lines under `Labels:` (or `Annotations:`), up to the next heading."""
    found: dict[str, str] = {}
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and not stripped.startswith("-"):
            inside = stripped[:-1].strip().lower() == section
            continue
        if inside and (match := _LABEL.match(line)):
            found.setdefault(match.group(1).lower(), unlink(match.group(2)))
        elif inside and stripped and not stripped.startswith("-"):
            inside = False
    return found


@dataclass(frozen=True, slots=True)
class GrafanaParser:
    tool: str = "grafana"
    app_ids: frozenset[str] = field(default_factory=frozenset)

    def looks_like(self, message: MessageEvent) -> bool:
        return is_bot_post(message) and bool(title_of(message)) and _is_grafana(message)

    def parse(self, message: MessageEvent) -> AlertPost | None:
        title = title_of(message)
        match = TITLE.match(title)
        if match is None:
            return None
        rest = match.group(3).strip()
        text = "\n".join(all_texts(message))
        labels = _section_labels(text, "labels")
        annotations = _section_labels(text, "annotations")
        rule = _RULE_URL.search(text)
        link = first_attachment(message).get("title_link")
        hints = tuple(labels[k] for k in ("service", "app", "job", "namespace", "pod", "instance") if k in labels)
        return AlertPost(
            tool=self.tool,
            alert_id=rest or title,
            status=status_of(match.group(1)),
            title=rest or title,
            url=rule.group(0) if rule else (link if isinstance(link, str) and link else None),
            labels=labels,
            service_hints=(*hints, *hints_from_title(rest)),
            urgency="low" if labels.get("severity", "").lower() in ("info", "warning", "low") else "high",
            summary=annotations.get("summary") or annotations.get("description") or "",
        )
