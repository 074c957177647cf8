"""The PagerDuty app's posts, read by `bot.pagerduty_post` and seen through the common AlertPost."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.alerts.base import AlertPost, AlertStatus
from bot.pagerduty_post import PAGERDUTY_APP_ID, parse_pagerduty_message
from bot.payloads import MessageEvent

_STATUS: dict[str, AlertStatus] = {"resolved": "resolved", "acknowledged": "acknowledged"}


@dataclass(frozen=True, slots=True)
class PagerDutyParser:
    tool: str = "pagerduty"
    app_ids: frozenset[str] = field(default_factory=lambda: frozenset({PAGERDUTY_APP_ID}))

    def looks_like(self, message: MessageEvent) -> bool:
        # Only the app's id says "PagerDuty": its layouts changed too often to trust one (see bot.pagerduty_post).
        return False

    def parse(self, message: MessageEvent) -> AlertPost | None:
        post = parse_pagerduty_message(message)
        if post is None:
            return None
        labels = {"pagerduty_service": post.service_name, "pagerduty_service_id": post.service_id, "number": post.number}
        return AlertPost(
            tool=self.tool,
            alert_id=post.incident_id,
            status=_STATUS.get(post.status, "triggered"),
            title=post.title or f"PagerDuty incident {post.incident_id}",
            url=post.url,
            labels={k: v for k, v in labels.items() if v},
            service_hints=tuple(h for h in (post.service_id, post.service_name) if h),
            urgency=post.urgency,
            summary=post.title,
        )
