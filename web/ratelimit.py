"""Rate limits per client IP (every request) and per API key (after authentication), counted in Redis.

Built on `limits`, the engine under slowapi, used directly: slowapi's decorators
take one key function per limit and a `request` argument on every route, while
we count two keys per request and answer in our own error format. Counts live in
Redis so that several web processes share them. When Redis is down we let
requests through (a log line says so): an outage of the limiter must not become
an outage of the API.
"""

from __future__ import annotations

import math
import time

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from web.context import request_id_of
from web.errors import ApiError, error_response

log = structlog.get_logger(__name__)

# Probes, scrapes and signed webhooks are not throttled: a kubelet or Slack retrying must never see 429.
EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/static/", "/slack/", "/webhooks/")
PAUSE_AFTER_FAILURE_S = 10.0


class RateLimited(ApiError):
    def __init__(self, retry_after: int, what: str) -> None:
        super().__init__(
            "RATE_LIMITED", f"too many requests for this {what}; retry in {retry_after} s", headers={"Retry-After": str(retry_after)}
        )
        self.retry_after = retry_after


class Limiter:
    def __init__(self, redis_url: str, *, per_key: str, per_ip: str, namespace: str) -> None:
        storage = RedisStorage(
            _async_uri(redis_url),
            implementation="redispy",
            key_prefix=f"ir:ratelimit:{namespace}",
            socket_connect_timeout=1,
            socket_timeout=1,
        )
        self.strategy = FixedWindowRateLimiter(storage)
        self.per_key = parse(per_key)
        self.per_ip = parse(per_ip)
        self._paused_until = 0.0

    async def check_ip(self, address: str) -> None:
        await self._hit(self.per_ip, "ip", address)

    async def check_key(self, key_id: int) -> None:
        await self._hit(self.per_key, "key", str(key_id))

    async def _hit(self, item: RateLimitItem, kind: str, identity: str) -> None:
        if time.monotonic() < self._paused_until:
            return
        try:
            if await self.strategy.hit(item, kind, identity):
                return
            stats = await self.strategy.get_window_stats(item, kind, identity)
        except Exception as exc:  # noqa: BLE001  (any storage failure means "fail open", whatever the driver raises)
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_S
            log.warning("rate_limit_storage_down_failing_open", error=str(exc), pause_s=PAUSE_AFTER_FAILURE_S)
            return
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())), "API key" if kind == "key" else "address")


def _async_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else "async+" + redis_url


def client_address(conn: HTTPConnection) -> str:
    # Behind a proxy, uvicorn's --proxy-headers puts the forwarded address here.
    return conn.client.host if conn.client else "unknown"


class IpRateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            await self.limiter.check_ip(client_address(conn))
        except RateLimited as exc:
            response = error_response(429, exc.code, exc.message, request_id_of(conn), headers=dict(exc.headers or {}))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
