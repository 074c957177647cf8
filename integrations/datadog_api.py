"""What the Datadog log and metric kinds share: datadog-api-client set up for our retries, and its failures as our errors.

The client's own retries stay off: a 429 waits what `X-RateLimit-Reset` says only while
the source's deadline allows, which the client's retry policy cannot know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pydantic import SecretStr

from integrations.errors import SourceError
from integrations.plugin import secret_from_env
from integrations.remote_calls import RetryableError

if TYPE_CHECKING:
    from datadog_api_client import ApiClient
    from datadog_api_client.exceptions import ApiException

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DatadogKeys:
    """The API and application keys, the variables they came from and the permission the application key needs."""

    api: SecretStr
    app: SecretStr
    api_env: str
    app_env: str
    permission: str

    @classmethod
    def from_env(cls, api_env: str, app_env: str, *, permission: str, purpose: str) -> DatadogKeys:
        return cls(
            api=secret_from_env(api_env, purpose=f"{purpose} API key"),
            app=secret_from_env(app_env, purpose=f"{purpose} application key"),
            api_env=api_env,
            app_env=app_env,
            permission=permission,
        )


def client(host: str, keys: DatadogKeys, timeout_s: float, *, raw: bool = False) -> ApiClient:
    """A client for `host`; `raw` leaves answers as urllib3 responses instead of the client's models."""
    # Imported when a source reads, not when the registry lists kinds: it is a large package.
    from datadog_api_client import ApiClient, Configuration

    configuration = Configuration(
        host=host,
        api_key={"apiKeyAuth": keys.api.get_secret_value(), "appKeyAuth": keys.app.get_secret_value()},
        request_timeout=timeout_s,
    )
    # Retries are ours (bounded by the deadline); the client's would sleep for as long as the reset says.
    configuration.enable_retry = False
    # Building the client's models costs about a millisecond a log, which caps a read at a thousand logs a second;
    # errors are raised from the status all the same.
    configuration.preload_content = not raw
    return ApiClient(configuration)


def guarded(call: Callable[[], T], what: str, keys: DatadogKeys, *, where: str = "") -> T:
    """`call()`, with the client's failures as SourceError (RetryableError for 429, 5xx and no answer).

    `where` starts each message; a log store leaves it out, since its read names the source already.
    """
    import urllib3
    from datadog_api_client.exceptions import ApiException, OpenApiException

    try:
        return call()
    except ApiException as exc:
        raise _error(exc, what, keys, where) from None
    except urllib3.exceptions.HTTPError as exc:
        # urllib3's text names the URL and the cause; the class name is enough and carries nothing secret.
        raise RetryableError(_said(where, f"cannot be reached ({type(exc).__name__})")) from None
    except OpenApiException as exc:
        raise SourceError(_said(where, f"answered in an unexpected shape for {what} ({type(exc).__name__})")) from None


def _error(exc: ApiException, what: str, keys: DatadogKeys, where: str) -> SourceError:
    # Never str(exc): it prints the response headers; only the status and Datadog's own `errors` are shown.
    status = int(exc.status or 0)
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = " ".join(" ".join(str(e) for e in body.get("errors") or []).split())[:300]
    detail = f": {errors}" if errors else ""
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    if status == 429:
        reset = headers.get("x-ratelimit-reset", "")
        wait = float(reset) if reset.isdigit() else None
        return RetryableError(_said(where, f"rate-limited {what} (429; resets in {reset or '?'}s)"), wait_s=wait)
    if status >= 500:
        return RetryableError(_said(where, f"answered {status} for {what}{detail}"))
    if status in (401, 403):
        return SourceError(
            _said(
                where,
                f"refused the keys ({status}{detail}); check {keys.api_env} and {keys.app_env}, "
                f"and that the application key has the {keys.permission} permission",
            )
        )
    return SourceError(_said(where, f"rejected {what} ({status}{detail})"))


def _said(where: str, text: str) -> str:
    return f"{where} {text}" if where else text
