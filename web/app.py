"""The web process (FastAPI): REST API, live progress, dashboard, /metrics, health, and the Slack and PagerDuty endpoints.

Middleware, outermost first: request context (request id, span, latency, last
resort 500) -> the signed deliveries of Slack and PagerDuty (web.direct, which
answer there) -> per-IP rate limit -> body size limit -> the routes.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from agents.render import validate_templates
from agents.ticketing import names_incident
from bot.refusals import Endpoint
from core.catalog import CatalogError
from core.logging import configure_logging
from core.redaction import configure as configure_redaction
from core.runtime import get_store
from core.settings import Settings, get_settings
from core.tracing import configure_tracing
from integrations.catalog import get_catalog
from web import dashboard, errors, health, live, observability
from web.api.history import resolution_router, search_router
from web.api.investigations import router as investigations_router
from web.auth import KeyVerifier
from web.bodysize import BodySizeLimitMiddleware
from web.context import RequestContextMiddleware
from web.direct import DirectRoutes
from web.ratelimit import IpRateLimitMiddleware, Limiter
from web.sample_report import SAMPLE_REPORT
from web.session import Sessions

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
# Database connections each web worker opens at start-up: what a burst of API reads holds at once.
WARM_CONNECTIONS = 2


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Here rather than only in `app.py serve`: uvicorn's worker processes import this factory afresh.
    configure_logging(settings.log_format, settings.log_level)
    configure_redaction(settings.redaction_patterns)
    configure_tracing("incident-responder-web")
    # A team's broken template override should stop the deploy, not the first report at 3 a.m.
    validate_templates(settings.templates_dir, SAMPLE_REPORT)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_warm_up, settings)
        # What start-up built (modules, the app, the catalog) lives as long as the process: kept out of the collector's
        # full passes, which otherwise walk it all and stall every request in flight (the load benchmark's tail).
        gc.collect()
        gc.freeze()
        yield
        await app.state.async_redis.aclose()

    app = FastAPI(
        title="Incident Responder",
        version="1",
        description="Start investigations, follow them live and read their reports. Authenticate with `Authorization: Bearer <API key>`.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # RequestContextMiddleware makes the one server span and latency metric a request has, and errors are logged
        # through structlog: FastAPI's own telemetry would double them, at a fifth of the front door's CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.key_verifier = KeyVerifier()
    app.state.sessions = Sessions(
        settings.session_secret.get_secret_value() if settings.session_secret else None, secure=settings.public_url.startswith("https://")
    )
    app.state.limiter = Limiter(
        settings.redis_url, per_key=settings.api_rate_limit_per_key, per_ip=settings.api_rate_limit_per_ip, namespace=settings.queue_name
    )
    app.state.async_redis = AsyncRedis.from_url(settings.redis_url, socket_connect_timeout=2)
    app.state.metrics = observability.WebMetrics()

    errors.install(app)
    app.include_router(investigations_router)
    app.include_router(resolution_router)
    app.include_router(search_router)
    app.include_router(live.router)
    app.include_router(health.router)
    app.include_router(observability.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard.history_router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(IpRateLimitMiddleware, limiter=app.state.limiter)
    mount_integrations(app, settings)
    app.add_middleware(RequestContextMiddleware, observe=app.state.metrics.observe_request)
    return app


def _warm_up(settings: Settings) -> None:
    """Do in each uvicorn worker, before its first request, what the first requests would otherwise do while acks wait.

    Opening the store checks the schema (alembic's import and a migration run, about a second, under the store
    lock); a burst opens several connections at once; the catalog's YAML is parsed and the incident tools' clients
    imported on first use (0.1-0.2 s holding the GIL). Measured by `bench.load`'s first seconds. Whatever fails here
    (a database down at start-up, a broken catalog) is left to the first request, which reports it as before.
    """
    try:
        engine = get_store().engine
        with ExitStack() as held:
            for _ in range(WARM_CONNECTIONS):
                held.enter_context(engine.connect())
    except (SQLAlchemyError, OSError) as exc:
        log.warning("store_warm_up_failed", error=type(exc).__name__)
    try:
        get_catalog()
    except CatalogError as exc:
        log.warning("catalog_warm_up_failed", error=str(exc))
    names_incident("warm-up", settings)


def mount_integrations(app: FastAPI, settings: Settings) -> list[str]:
    """Answer the Slack and PagerDuty deliveries that are configured, in front of the router; their paths, mounted."""
    endpoints: dict[str, Endpoint] = {}
    if settings.slack_signing_secret is not None and settings.slack_signing_secret.get_secret_value():
        from bot.http import SLACK_PATH, slack_endpoint

        endpoints[SLACK_PATH] = slack_endpoint(settings)
    if settings.pagerduty_webhook_secrets:
        from bot.pagerduty_webhook import PAGERDUTY_PATH, pagerduty_endpoint

        endpoints[PAGERDUTY_PATH] = pagerduty_endpoint(settings)
    app.add_middleware(DirectRoutes, endpoints=endpoints, max_bytes=settings.max_request_bytes)
    log.info("web_integrations_mounted", mounted=sorted(endpoints))
    return sorted(endpoints)
