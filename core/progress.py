"""Progress events: recorded in the store, published on Redis, handed to in-process listeners.

The worker is the only writer. The web process follows a run through the Redis
channel (several web processes can), the Slack poster and the CLI's display
subscribe in-process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError

from core.models import ProgressEvent
from core.store import Store

log = structlog.get_logger(__name__)

Listener = Callable[[str, ProgressEvent], None]
_listeners: list[Listener] = []


def channel(investigation_id: str) -> str:
    return f"ir:progress:{investigation_id}"


def subscribe(listener: Listener) -> None:
    """Call `listener(investigation_id, event)` for every event this process records."""
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def event_payload(event: ProgressEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "investigation_id": event.investigation_id,
        "at": event.at.isoformat(),
        "stage": event.stage,
        "message": event.message,
        "milestone": event.milestone,
        "data": event.data,
    }


class Progress:
    """Records the progress of one investigation."""

    def __init__(self, store: Store, investigation_id: str, redis: Redis | None = None) -> None:
        self.store = store
        self.investigation_id = investigation_id
        self.redis = redis

    def __call__(self, stage: str, message: str, *, milestone: bool = False, **data: Any) -> ProgressEvent:
        event = self.store.add_progress(self.investigation_id, stage, message, milestone=milestone, data=data)
        log.info("progress", stage=stage, message=message)
        if self.redis is not None:
            try:
                self.redis.publish(channel(self.investigation_id), json.dumps(event_payload(event), default=str))
            except (RedisError, OSError):
                # Live viewers miss one line; the store still has it and the page reloads from there.
                log.warning("progress_publish_failed")
        for listener in list(_listeners):
            try:
                listener(self.investigation_id, event)
            except Exception:
                # A broken listener (Slack down) must not stop the investigation itself.
                log.exception("progress_listener_failed", listener=getattr(listener, "__name__", repr(listener)))
        return event
