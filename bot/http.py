"""`POST /slack/events`: Slack's HTTP deliveries (events, commands, interactivity) into the Bolt app."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool

from bot.app import create_bolt_app
from core.settings import Settings


def slack_router(settings: Settings) -> APIRouter:
    """A router with the Bolt endpoint; request signatures are verified by Bolt (401 when they don't match)."""
    bolt = create_bolt_app(settings)
    router = APIRouter()

    @router.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        # Bolt's dispatch is synchronous (it polls for the ack); keep it off the event loop.
        bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    return router
