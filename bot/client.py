"""The one place Slack WebClients are built: base URL, retries and call metrics live here."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web.slack_response import SlackResponse

from core.metrics import inc
from core.settings import Settings, get_settings

# A 429 is retried after Slack's Retry-After; a few tries ride out a burst without hiding a real outage.
RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 2
CONNECTION_RETRIES = 2
TIMEOUT_S = 10


class MeteredWebClient(WebClient):
    """A WebClient that counts every call by method and outcome (after its retries)."""

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        try:
            response = super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            inc("slack_api_calls_total", method=api_method, outcome=str(exc.response.get("error") or exc.response.status_code))
            raise
        except Exception:
            inc("slack_api_calls_total", method=api_method, outcome="connection_error")
            raise
        inc("slack_api_calls_total", method=api_method, outcome="ok")
        return response


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code (`channel_not_found`, `ratelimited` ...) of a failed call."""
    return str(exc.response.get("error") or f"http_{exc.response.status_code}")


def build_client(settings: Settings, *, token: str | None = None) -> MeteredWebClient:
    """A client for the bot token (or `token`), talking to SLACK_API_URL, retrying 429, 5xx and dropped connections."""
    if token is None and settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return MeteredWebClient(
        token=token,
        base_url=base_url,
        timeout=TIMEOUT_S,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
            ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        ],
    )


@lru_cache(maxsize=4)
def _client_for(base_url: str, token: str | None) -> MeteredWebClient:
    return build_client(get_settings(), token=token)


def get_client() -> MeteredWebClient:
    """The process's bot client (WebClient keeps no per-call state, so threads share it)."""
    settings = get_settings()
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return _client_for(settings.slack_api_url, token)


def reset_client() -> None:
    _client_for.cache_clear()
