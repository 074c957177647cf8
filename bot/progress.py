"""Progress in the Slack thread, posted from the worker process as the investigation runs.

One status message per investigation, re-rendered from the stored row with
`chat.update` (at most one edit per DEBOUNCE_S per investigation, tracked in
Redis so separate job processes share it); a thread reply at milestones; the
report, follow-up answers and the Jira link when they are stored. Every message
is built from stored state and passes redaction before it leaves.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from agents.jira_ticket import register_thread_link
from agents.ticketing import CREATE as TICKET_CREATE
from agents.ticketing import STAGE as TICKET_STAGE
from agents.ticketing import ticket_buttons
from bot.blocks import (
    Block,
    failure_text,
    jira_created_text,
    milestone_text,
    report_message,
    report_url,
    status_message,
    ticket_created_text,
)
from bot.client import get_client, slack_error
from core.catalog import CatalogError
from core.models import Investigation, ProgressEvent, Status
from core.progress import subscribe, unsubscribe
from core.redaction import redact, redact_text
from core.runtime import get_redis, get_store
from core.settings import Settings, get_settings
from integrations.catalog import get_catalog

log = structlog.get_logger(__name__)

DEBOUNCE_S = 3.0
FINAL_STAGES = frozenset({Status.done.value, Status.degraded.value, Status.failed.value})
# Claims that make "post once" hold when two job processes (a retry, a slow first attempt) race.
CLAIM_TTL_S = 7 * 86400


class ProgressPoster:
    def __init__(self, settings: Settings, client: WebClient, redis: Redis) -> None:
        self.settings = settings
        self.client = client
        self.redis = redis
        self._local_edits: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, investigation_id: str, event: ProgressEvent) -> None:
        store = get_store()
        row = store.get(investigation_id)
        if row is None:
            return
        if event.stage == "answer":
            self._post_answer(row, event)
            return
        if event.stage == "jira":
            self._post_jira(row, event)
            return
        if event.stage == TICKET_STAGE:
            self._post_ticket(row, event)
            return
        row = self._ensure_status_message(row, event)
        if row is None:
            return
        if event.stage in FINAL_STAGES:
            self._edit_status(row, event, force=True)
            if event.stage == Status.failed.value:
                self._reply(row, failure_text(row, row.error or event.message, public_url=self.settings.public_url))
            else:
                self._post_report(row)
            return
        self._edit_status(row, event, force=False)
        if event.milestone:
            self._reply(row, milestone_text(event))

    # status ---------------------------------------------------------------------

    def _home_channel(self, row: Investigation) -> str | None:
        if row.slack_channel:
            return row.slack_channel
        try:
            spec = get_catalog().get(row.service)
        except CatalogError:
            return None
        return spec.channel if spec is not None else None

    def _ensure_status_message(self, row: Investigation, event: ProgressEvent) -> Investigation | None:
        """The row with its status message posted (created here when no listener did); None when it has no Slack home."""
        if row.slack_status_ts:
            return row
        channel = self._home_channel(row)
        if channel is None:
            return None
        if not self._claim(f"ir:slack:status-message:{row.id}"):
            # Another event of this run is creating it right now; the next edit uses it.
            return None
        text, blocks = status_message(row, event, public_url=self.settings.public_url)
        response = self._send("chat.postMessage", channel=channel, thread_ts=row.slack_thread_ts, text=text, blocks=blocks)
        if response is None:
            self._release(f"ir:slack:status-message:{row.id}")
            return None
        ts, channel_id = str(response["ts"]), str(response["channel"])
        changes: dict[str, Any] = {"slack_status_ts": ts, "slack_channel": channel_id}
        if not row.slack_thread_ts:
            # Nothing opened a thread (a webhook, the API): the status message becomes its root.
            changes["slack_thread_ts"] = ts
        self._mark_edited(row.id)
        return get_store().update(row.id, **changes)

    def _edit_status(self, row: Investigation, event: ProgressEvent, *, force: bool) -> None:
        if not row.slack_status_ts or not row.slack_channel:
            return
        if not force and not self._may_edit(row.id):
            return
        text, blocks = status_message(row, event, public_url=self.settings.public_url)
        self._send("chat.update", channel=row.slack_channel, ts=row.slack_status_ts, text=text, blocks=blocks)

    def _may_edit(self, investigation_id: str) -> bool:
        try:
            return bool(self.redis.set(f"ir:slack:status-edit:{investigation_id}", "1", nx=True, px=int(DEBOUNCE_S * 1000)))
        except RedisError:
            # Without Redis, at least this process keeps to the limit.
            now = time.monotonic()
            with self._lock:
                if now - self._local_edits.get(investigation_id, 0.0) < DEBOUNCE_S:
                    return False
                self._local_edits[investigation_id] = now
            return True

    def _mark_edited(self, investigation_id: str) -> None:
        try:
            self.redis.set(f"ir:slack:status-edit:{investigation_id}", "1", px=int(DEBOUNCE_S * 1000))
        except RedisError:
            with self._lock:
                self._local_edits[investigation_id] = time.monotonic()

    # thread replies -------------------------------------------------------------

    def _reply(self, row: Investigation, text: str, blocks: list[Block] | None = None) -> str | None:
        if not row.slack_channel or not row.slack_thread_ts:
            return None
        response = self._send("chat.postMessage", channel=row.slack_channel, thread_ts=row.slack_thread_ts, text=text, blocks=blocks)
        return str(response["ts"]) if response is not None else None

    def _post_report(self, row: Investigation) -> None:
        fresh = get_store().require(row.id)
        if fresh.report is None or fresh.slack_report_ts or not self._claim(f"ir:slack:report:{row.id}"):
            return
        text, blocks = self._report_message(fresh)
        ts = self._reply(fresh, text, blocks)
        if ts is None:
            # Slack refused the blocks (or the channel); the plain text with the link still gets the answer across.
            ts = self._reply(
                fresh, f"{text}\n(The formatted report could not be posted; read it at {report_url(self.settings.public_url, row.id)})"
            )
        if ts is not None:
            get_store().update(row.id, slack_report_ts=ts)
        else:
            self._release(f"ir:slack:report:{row.id}")

    def _post_answer(self, row: Investigation, event: ProgressEvent) -> None:
        follow_up_id = event.data.get("follow_up_id")
        if follow_up_id is not None and not self._claim(f"ir:slack:answer:{row.id}:{follow_up_id}"):
            return
        follow_up = get_store().get_follow_up(int(follow_up_id)) if follow_up_id is not None else None
        asked = f"<@{follow_up.asked_by}> " if follow_up is not None and follow_up.asked_by else ""
        self._reply(row, f"{asked}{event.message}")

    def _post_jira(self, row: Investigation, event: ProgressEvent) -> None:
        key, url, error = event.data.get("key"), event.data.get("url"), event.data.get("error")
        if error or not key:
            self._reply(row, f":warning: {event.message}")
            return
        if not self._claim(f"ir:slack:jira:{row.id}:{key}"):
            return
        self._reply(row, jira_created_text(str(key), str(url) if url else None))
        fresh = get_store().require(row.id)
        if fresh.report is not None and fresh.slack_report_ts and fresh.slack_channel:
            text, blocks = self._report_message(fresh)
            self._send("chat.update", channel=fresh.slack_channel, ts=fresh.slack_report_ts, text=text, blocks=blocks)

    def _post_ticket(self, row: Investigation, event: ProgressEvent) -> None:
        """An incident filed on request (or the reason it was not); notes added to incidents stay on the dashboard."""
        if event.data.get("action") != TICKET_CREATE:
            return
        tool, key, url = event.data.get("tool"), event.data.get("key"), event.data.get("url")
        if event.data.get("error") or not key:
            self._reply(row, f":warning: {event.message}")
            return
        if not self._claim(f"ir:slack:ticket:{row.id}:{tool}:{key}"):
            return
        self._reply(row, ticket_created_text(str(event.data.get("label") or tool), str(key), str(url) if url else None))
        fresh = get_store().require(row.id)
        if fresh.report is not None and fresh.slack_report_ts and fresh.slack_channel:
            text, blocks = self._report_message(fresh)
            self._send("chat.update", channel=fresh.slack_channel, ts=fresh.slack_report_ts, text=text, blocks=blocks)

    def _report_message(self, row: Investigation) -> tuple[str, list[Block]]:
        assert row.report is not None
        return report_message(
            row,
            row.report,
            jira=get_store().get_jira(row.id),
            public_url=self.settings.public_url,
            tickets=ticket_buttons(row.id, self.settings),
        )

    # plumbing -------------------------------------------------------------------

    def _send(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """One Web API call with redacted text and blocks; a refusal is logged and returns None."""
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if "text" in kwargs:
            kwargs["text"] = redact_text(kwargs["text"])
        if "blocks" in kwargs:
            kwargs["blocks"] = redact(kwargs["blocks"])
        try:
            if method == "chat.update":
                response = self.client.chat_update(**kwargs)
            else:
                response = self.client.chat_postMessage(unfurl_links=False, **kwargs)
        except SlackApiError as exc:
            log.warning("slack_post_failed", method=method, error=slack_error(exc))
            return None
        return dict(response.data) if isinstance(response.data, dict) else None

    def _claim(self, key: str) -> bool:
        try:
            return bool(self.redis.set(key, "1", nx=True, ex=CLAIM_TTL_S))
        except RedisError:
            return True

    def _release(self, key: str) -> None:
        try:
            self.redis.delete(key)
        except RedisError:
            log.warning("slack_claim_release_failed", key=key)


def thread_permalink(investigation: Investigation) -> str | None:
    """A link to the investigation's Slack thread (for the Jira description)."""
    if not investigation.slack_channel or not investigation.slack_thread_ts:
        return None
    try:
        response = get_client().chat_getPermalink(channel=investigation.slack_channel, message_ts=investigation.slack_thread_ts)
    except SlackApiError as exc:
        log.warning("permalink_failed", error=slack_error(exc))
        return None
    link = response.get("permalink")
    return str(link) if link else None


_registered: list[ProgressPoster] = []


def register() -> None:
    """In the worker: follow every progress event of this process into Slack."""
    if _registered:
        return
    poster = ProgressPoster(get_settings(), get_client(), get_redis())
    _registered.append(poster)
    subscribe(poster)
    register_thread_link(thread_permalink)


def unregister() -> None:
    while _registered:
        unsubscribe(_registered.pop())
