"""CloudWatch alarms posted by AWS Chatbot (Amazon Q Developer in chat applications).

Chatbot heads the notification `CloudWatch Alarm | <alarm name> | <region> | Account: <id>`,
links the alarm in the CloudWatch console (`...#alarmsV2:alarm/<name>`), and states the
transition (`... changed state to ALARM`, `State: OK`); the OK transition is a new post.
Alarm dimensions, when shown, come as fields (`ServiceName`, `ClusterName`, `FunctionName`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.alerts.base import AlertPost, AlertStatus, all_texts, is_bot_post, label_pairs, unlink
from bot.payloads import MessageEvent

_HEADER = re.compile(
    r"CloudWatch Alarm\s*\|\s*(?P<name>[^|\n]+?)\s*\|\s*(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\s*\|\s*Account:\s*(?P<account>\d{12})"
)
_STATE = re.compile(r"(?:state(?:\s+changed)?\s+(?:to|:)\s*|\bState:\s*\*?)(ALARM|OK|INSUFFICIENT_DATA)\b", re.IGNORECASE)
_CONSOLE = re.compile(r"https://[\w.-]*console\.aws\.amazon\.com/cloudwatch/home\?region=[\w-]+#alarmsV2:alarm/[^\s|>]+")
_DIMENSIONS = ("servicename", "clustername", "functionname", "dbinstanceidentifier", "loadbalancer", "targetgroup", "autoscalinggroupname")


@dataclass(frozen=True, slots=True)
class CloudWatchParser:
    tool: str = "cloudwatch"
    app_ids: frozenset[str] = field(default_factory=frozenset)

    def looks_like(self, message: MessageEvent) -> bool:
        return is_bot_post(message) and bool(_HEADER.search(unlink("\n".join(all_texts(message)))))

    def parse(self, message: MessageEvent) -> AlertPost | None:
        texts = all_texts(message)
        plain = unlink("\n".join(texts))
        header = _HEADER.search(plain)
        if header is None:
            return None
        fields = label_pairs(texts)
        states = [fields.get("state", "").strip("* ").upper(), *(m.group(1).upper() for m in _STATE.finditer(plain))]
        states = [s for s in states if s in ("ALARM", "OK", "INSUFFICIENT_DATA")]
        state = states[0] if states else ("OK" if ":white_check_mark:" in plain or ":large_green_circle:" in plain else "ALARM")
        status: AlertStatus = "resolved" if state == "OK" else "triggered"
        if state == "INSUFFICIENT_DATA":
            status = "acknowledged"
        dims = {k: fields[k] for k in _DIMENSIONS if k in fields}
        name = header.group("name").strip()
        console = _CONSOLE.search("\n".join(texts))
        description = fields.get("alarm description") or fields.get("description") or ""
        return AlertPost(
            tool=self.tool,
            alert_id=f"{header.group('account')}/{header.group('region')}/{name}",
            status=status,
            title=f"CloudWatch alarm {name}" + (f": {description}" if description else ""),
            url=console.group(0) if console else None,
            labels={"alarm": name, "region": header.group("region"), **dims},
            service_hints=(*dims.values(), name),
            summary=description,
        )
