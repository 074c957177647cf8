"""Socket Mode: Slack deliveries over a WebSocket, for development without a public URL."""

from __future__ import annotations

import structlog
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import create_bolt_app
from bot.client import build_client
from core.settings import get_settings

log = structlog.get_logger(__name__)


def start_socket_mode() -> None:
    """Connect with SLACK_APP_TOKEN and serve until the process ends (run it in a background thread)."""
    settings = get_settings()
    if settings.slack_app_token is None:
        raise RuntimeError("SLACK_APP_TOKEN is not set; Socket Mode needs an app-level token (xapp-...)")
    app_token = settings.slack_app_token.get_secret_value()
    handler = SocketModeHandler(create_bolt_app(settings), app_token=app_token, web_client=build_client(settings, token=app_token))
    log.info("slack_socket_mode_starting")
    handler.start()
