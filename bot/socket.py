"""Socket Mode: Slack deliveries over a WebSocket, for development without a public URL.

`serve` starts this on a thread of its supervisor process only: with `--workers N`
uvicorn spawns fresh worker processes (they import `web.app`, never `app.py serve`),
so a process group holds exactly one Socket Mode connection (two would split Slack's
deliveries between them, which works but doubles nothing useful).
"""

from __future__ import annotations

import structlog
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import create_bolt_app
from bot.client import build_client
from core.settings import Settings, get_settings

log = structlog.get_logger(__name__)


def socket_mode_handler(settings: Settings) -> SocketModeHandler:
    """The handler for SLACK_APP_TOKEN; `connect()` it (non-blocking) or `start()` it (blocks)."""
    if settings.slack_app_token is None:
        raise RuntimeError("SLACK_APP_TOKEN is not set; Socket Mode needs an app-level token (xapp-...)")
    app_token = settings.slack_app_token.get_secret_value()
    return SocketModeHandler(create_bolt_app(settings), app_token=app_token, web_client=build_client(settings, token=app_token))


def start_socket_mode() -> None:
    """Connect with SLACK_APP_TOKEN and serve until the process ends (run it in a background thread)."""
    handler = socket_mode_handler(get_settings())
    log.info("slack_socket_mode_starting")
    handler.start()
