"""The Bolt app: request verification on, our WebClient, the routing table, a context for every handler."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog
from slack_bolt import App, BoltContext

from bot.client import get_client
from bot.context import BotContext
from bot.routes import ROUTES
from core.settings import Settings

log = structlog.get_logger(__name__)

# Listeners run after the ack on this pool; they only store and enqueue, so a modest pool keeps up with bursts.
LISTENER_THREADS = 16


def create_bolt_app(settings: Settings) -> App:
    """The Bolt app for HTTP (`/slack/events`) and Socket Mode alike; no Slack call happens here."""
    client = get_client()
    ctx = BotContext(settings=settings, client=client)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        request_verification_enabled=True,
        # auth.test runs on the first request instead of at start-up, so a Slack outage cannot stop the web process booting.
        token_verification_enabled=False,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="slack-listener"),
        raise_error_for_unhandled_request=False,
    )

    def inject_context(context: BoltContext, next: Callable[[], None]) -> None:
        context["ctx"] = ctx
        next()

    app.use(inject_context)

    @app.error
    def log_listener_error(error: Exception) -> None:
        log.error("slack_listener_failed", error=f"{type(error).__name__}: {error}", exc_info=error)

    for route in ROUTES:
        if route.kind == "command":
            app.command(route.match)(route.handler)
        elif route.kind == "event":
            app.event(route.match)(route.handler)
        elif route.kind == "shortcut":
            app.shortcut(route.match)(route.handler)
        elif route.kind == "view":
            app.view(route.match)(route.handler)
        else:
            app.action(route.match)(route.handler)
    return app
