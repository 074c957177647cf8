"""Per-request context: a request id, a server span, latency, and the last line of defence for errors.

A plain ASGI middleware (not BaseHTTPMiddleware) so that it also wraps streams
and WebSockets and adds no task hop per request.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.tracing import tracer

log = structlog.get_logger(__name__)

HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

Observe = Callable[[str, str, int, float], None]


def request_id_of(conn: HTTPConnection) -> str:
    return str(conn.scope.get("state", {}).get("request_id", "-"))


def _incoming_id(headers: Mapping[str, str]) -> str:
    # Reuse a caller's id (a proxy's or a client's) so their logs and ours line up; never trust its shape.
    given = headers.get("x-request-id", "")
    return given if _SAFE_ID.match(given) else uuid.uuid4().hex


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, observe: Observe) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = _incoming_id(headers)
        scope.setdefault("state", {})["request_id"] = request_id
        method = scope.get("method", "WS")
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                out = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in out):
                    out.append((b"x-request-id", request_id.encode()))
                message["headers"] = out
            await send(message)

        token = otel_context.attach(propagate.extract(headers))
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            with tracer().start_as_current_span(f"{method} {scope['path']}", kind=SpanKind.SERVER) as span:
                try:
                    await self.app(scope, receive, send_with_id)
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR))
                    log.exception("unhandled_error", method=method, path=scope["path"])
                    if status["sent"] or scope["type"] != "http":
                        raise
                    await _send_internal_error(send_with_id, request_id)
                route = _route_of(scope)
                span.update_name(f"{method} {route}")
                span.set_attributes({"http.request.method": method, "http.route": route, "http.response.status_code": int(status["code"])})
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            otel_context.detach(token)
            if scope["type"] == "http":
                self.observe(method, _route_of(scope), int(status["code"]), time.perf_counter() - started)


async def _send_internal_error(send: Send, request_id: str) -> None:
    message = "internal error; quote the request id when reporting it"
    body: dict[str, Any] = {"error": {"code": "INTERNAL_ERROR", "message": message, "request_id": request_id}}
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": raw})
