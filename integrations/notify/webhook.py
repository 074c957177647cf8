"""A finished report's summary POSTed as JSON to a URL, signed per the Standard Webhooks scheme.

Headers `webhook-id` (stable per investigation and target, so a receiver drops a
repeat), `webhook-timestamp` (seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`); the secret is `whsec_<base64>`
from the environment variable the options name (https://www.standardwebhooks.com).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.notify.base import Notice, OpsNotice
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import RetryableError


class WebhookOptions(SourceOptions):
    url: str = Field(pattern=r"^https?://", description="where the JSON summary is POSTed")
    secret_env: EnvVarName | None = Field(None, description="environment variable holding the signing secret (whsec_...); unsigned without")
    timeout_s: float = Field(10.0, gt=0, description="longest wait for the receiver")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookNotifier:
    def __init__(self, options: WebhookOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = options.name or "webhook"
        self.options = options
        self._secret = secret_from_env(options.secret_env, purpose="webhook signing secret") if options.secret_env else None
        self._transport = transport

    @property
    def target(self) -> str:
        return httpx.URL(self.options.url).copy_with(query=None, userinfo=b"").__str__()

    def send(self, notice: Notice) -> None:
        self._post(notice.summary_json(), notice.delivery_id or f"msg_{notice.investigation_id}")

    def send_ops(self, notice: OpsNotice) -> None:
        self._post(notice.summary_json(), notice.delivery_id)

    def _post(self, payload: dict[str, Any], message_id: str) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": message_id, "webhook-timestamp": str(timestamp)}
        if self._secret is not None:
            headers["webhook-signature"] = sign(self._secret.get_secret_value(), message_id, timestamp, body)
        try:
            with httpx.Client(timeout=self.options.timeout_s, transport=self._transport) as client:
                response = client.post(self.options.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableError(f"{self.target} did not answer: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"{self.target} answered {response.status_code}", wait_s=_retry_after(response))
        if response.status_code >= 300:
            raise SourceError(f"{self.target} refused the delivery ({response.status_code})")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _check(notifier: WebhookNotifier) -> str:
    # A HEAD sends no notice: any HTTP answer (405 included) shows the receiver is there.
    try:
        with httpx.Client(timeout=notifier.options.timeout_s) as client:
            response = client.head(notifier.options.url)
    except httpx.HTTPError as exc:
        raise SourceError(f"{notifier.target} did not answer: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise SourceError(f"{notifier.target} answered {response.status_code}")
    signed = "signed" if notifier._secret is not None else "unsigned"
    return f"{notifier.target} answers (HEAD {response.status_code}); deliveries {signed}"


def _build(options: WebhookOptions, _base_dir: Path) -> WebhookNotifier:
    return WebhookNotifier(options)


KIND = SourceKind(
    name="webhook",
    role=roles.NOTIFY,
    options=WebhookOptions,
    build=_build,
    check=_check,
    summary="the report summary as JSON to a URL, signed per Standard Webhooks",
)
