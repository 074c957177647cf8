"""Signed deliveries (Slack, PagerDuty) answered in front of FastAPI's router.

These endpoints check a signature, parse a body and hand over to the queue; Slack
waits 3 s for the answer and sends bursts. FastAPI's routing, dependency solving
and exception middleware cost them about a millisecond of CPU a request (measured
with `python -m bench.load`, half of an event's whole cost) and give them nothing.
They keep what every route has: the request id, span and latency metric (the
request-context middleware sits outside this one), the body size limit and the
one error format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.refusals import DeliveryRefused, Endpoint
from web.bodysize import PayloadTooLarge
from web.context import request_id_of
from web.errors import error_response


@dataclass(frozen=True, slots=True)
class DirectRoute:
    """What the request-context middleware reads as the matched route (`path` labels the latency metric)."""

    path: str
    endpoint: Endpoint


class DirectRoutes:
    """POSTs to `endpoints`' paths go straight to them; other methods there get 405, everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, endpoints: Mapping[str, Endpoint], max_bytes: int) -> None:
        self.app = app
        self.routes = {path: DirectRoute(path, endpoint) for path, endpoint in endpoints.items()}
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        request = Request(scope, receive)
        request_id = request_id_of(request)
        response: Response
        if scope["method"] != "POST":
            response = error_response(
                405, "METHOD_NOT_ALLOWED", f"{scope['method']} is not allowed on {route.path}", request_id, headers={"Allow": "POST"}
            )
        else:
            try:
                response = await route.endpoint(request, await self._body(request))
            except PayloadTooLarge as exc:
                response = error_response(413, exc.code, exc.message, request_id, headers={"Connection": "close"})
            except DeliveryRefused as exc:
                response = error_response(exc.status_code, exc.code, exc.message, request_id)
        await response(scope, receive, send)

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise PayloadTooLarge(self.max_bytes)
        chunks, seen = [], 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > self.max_bytes:
                raise PayloadTooLarge(self.max_bytes)
            chunks.append(chunk)
        return b"".join(chunks)
