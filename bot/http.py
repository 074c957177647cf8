"""`POST /slack/events`: Slack's HTTP deliveries (events, commands, interactivity) into the Bolt app.

The signature is checked here first (then again by Bolt), so that an unsigned request
is refused before its body is parsed, and refusals use the web process's error format
(Slack never reads the body of a 4xx; people and proxies do).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bot.app import create_bolt_app
from bot.refusals import DeliveryRefused, Endpoint
from core.settings import Settings

SLACK_PATH = "/slack/events"
BAD_SIGNATURE = "X-Slack-Signature is missing, stale (over 5 minutes old) or does not match SLACK_SIGNING_SECRET"
MAX_SKEW_S = 300


def signed_by_slack(body: bytes, headers: Mapping[str, str], secret: str, *, now: float | None = None) -> bool:
    """Slack's v0 signature over the raw bytes (any bytes: a body that is not UTF-8 is still checked, then refused as malformed)."""
    timestamp, signature = headers.get("x-slack-request-timestamp", ""), headers.get("x-slack-signature", "")
    if not secret or not timestamp.isdigit() or not signature or abs((now or time.time()) - int(timestamp)) > MAX_SKEW_S:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def _malformed(body: bytes, content_type: str) -> str | None:
    """Why the body is no Slack payload (bad UTF-8, bad JSON, a JSON payload that is no object), or None."""
    try:
        text = body.decode("utf-8")
        if "application/json" in content_type:
            document = json.loads(text)
        else:
            payload = parse_qs(text).get("payload")
            document = json.loads(payload[0]) if payload else {}
    except ValueError as exc:
        return f"the body is not valid {'JSON' if 'json' in content_type else 'form data or its payload is not JSON'}: {exc}"[:300]
    return None if isinstance(document, dict) else "the JSON body is not an object"


def slack_endpoint(settings: Settings) -> Endpoint:
    """The Bolt endpoint; bad signatures get 401, malformed bodies 400, both in the standard error format."""
    bolt = create_bolt_app(settings)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""

    async def slack_events(request: Request, body: bytes) -> Response:
        if not signed_by_slack(body, request.headers, secret):
            raise DeliveryRefused(401, "INVALID_SIGNATURE", BAD_SIGNATURE)
        problem = _malformed(body, request.headers.get("content-type", ""))
        if problem is not None:
            raise DeliveryRefused(400, "BAD_REQUEST", problem)
        # Bolt's dispatch is synchronous (it polls for the ack); keep it off the event loop.
        bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    return slack_events
