"""Live progress of one investigation as Server-Sent Events.

Order on the wire: the events already stored (after Last-Event-ID when the
browser reconnects), then live ones from the worker's Redis channel, then one
`status` event once the investigation has finished, and the stream ends. We
subscribe before reading the store so nothing published in between is lost;
duplicates are dropped by event id. While the channel is quiet (or Redis is
down) the store is polled, so a lost publish only delays a line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from core.models import Investigation, Status
from core.progress import channel, event_payload
from core.runtime import get_store
from web import service
from web.auth import require
from web.errors import ERROR_RESPONSES

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["investigations"], responses=ERROR_RESPONSES)
QUIET_POLL_S = 10.0
NO_REDIS_POLL_S = 2.0


def _frame(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def _status_data(row: Investigation) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "category": row.category, "confidence": row.confidence}


class _Follower:
    def __init__(self, investigation_id: str, after_id: int) -> None:
        self.investigation_id = investigation_id
        self.last_id = after_id

    async def stored(self) -> list[str]:
        events = await run_in_threadpool(get_store().progress, self.investigation_id, after_id=self.last_id)
        frames = []
        for event in events:
            self.last_id = max(self.last_id, event.id or 0)
            frames.append(_frame("progress", event_payload(event), event.id))
        return frames

    def live(self, payload: dict[str, Any]) -> str | None:
        event_id = int(payload.get("id") or 0)
        if event_id <= self.last_id:
            return None
        self.last_id = event_id
        return _frame("progress", payload, event_id)

    async def finished(self) -> Investigation | None:
        row = await run_in_threadpool(get_store().require, self.investigation_id)
        return row if Status(row.status).finished else None


async def _subscribe(redis: Redis, investigation_id: str) -> Any:
    try:
        pubsub = redis.pubsub()
        await pubsub.subscribe(channel(investigation_id))
        return pubsub
    except (RedisError, OSError) as exc:
        log.warning("live_progress_without_redis", error=str(exc))
        return None


async def follow(request: Request, investigation_id: str, after_id: int) -> AsyncIterator[str]:
    follower = _Follower(investigation_id, after_id)
    pubsub = await _subscribe(request.app.state.async_redis, investigation_id)
    try:
        yield "retry: 3000\n\n"
        for frame in await follower.stored():
            yield frame
        while True:
            row = await follower.finished()
            if row is not None:
                for frame in await follower.stored():
                    yield frame
                yield _frame("status", _status_data(row))
                return
            payload = await _next_message(pubsub)
            if payload is None:
                for frame in await follower.stored():
                    yield frame
                yield ": keep-alive\n\n"
                continue
            live = follower.live(payload)
            if live is not None:
                yield live
    finally:
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                log.debug("pubsub_close_failed")


async def _next_message(pubsub: Any) -> dict[str, Any] | None:
    """The next published event, or None after a quiet spell (then the caller polls the store)."""
    if pubsub is None:
        await asyncio.sleep(NO_REDIS_POLL_S)
        return None
    try:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=QUIET_POLL_S)
    except (RedisError, OSError) as exc:
        log.warning("live_progress_channel_lost", error=str(exc))
        await asyncio.sleep(NO_REDIS_POLL_S)
        return None
    if message is None:
        return None
    try:
        data = json.loads(message["data"])
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@router.get(
    "/investigations/{investigation_id}/events",
    summary="Live progress as Server-Sent Events: stored events, live ones, then the final status",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def progress_events(
    investigation_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")],
    request: Request,
    _: Annotated[object, Depends(require("read"))],
    after: Annotated[int, Query(ge=0, le=2**62, description="Only events after this id.")] = 0,
    last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> StreamingResponse:
    await run_in_threadpool(service.require_investigation, investigation_id)
    resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(follow(request, investigation_id, resume), media_type="text/event-stream", headers=headers)
