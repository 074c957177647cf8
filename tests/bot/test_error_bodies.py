"""Refusals of /slack/events and /webhooks/pagerduty (bad signature, bad JSON, oversized body) use the standard error format."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from bot_harness import PD_WEBHOOK_SECRET, WebServer, fixture, slack_headers
from fastapi import FastAPI
from fastapi.testclient import TestClient
from standin_slack import SlackStandin

from core.runtime import get_store
from core.settings import Settings


def _pd_headers(body: bytes, secret: str = PD_WEBHOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1={digest}"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and "request_id" in error
    return dict(error)


def test_badly_signed_slack_requests_get_invalid_signature_in_the_standard_format(web: WebServer, slack: SlackStandin) -> None:
    body = urlencode(fixture("slash_command.json")).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    wrong = web.http.post("/slack/events", content=body, headers={**form, **slack_headers(body, secret="nope")})
    stale = web.http.post("/slack/events", content=body, headers={**form, **slack_headers(body, timestamp=1_600_000_000)})
    unsigned = web.http.post("/slack/events", content=b"{not json", headers={"Content-Type": "application/json"})

    for response in (wrong, stale, unsigned):
        assert "X-Slack-Signature" in _error(response, 401, "INVALID_SIGNATURE")["message"]
    assert get_store().list_investigations()[0] == [] and not slack.calls


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "event_callback", ', "application/json"),
        (b"[1, 2]", "application/json"),
        (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        (b"text=\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
def test_signed_slack_request_with_a_malformed_body_gets_bad_request(web: WebServer, body: bytes, content_type: str) -> None:
    response = web.http.post("/slack/events", content=body, headers={"Content-Type": content_type, **slack_headers(body)})

    _error(response, 400, "BAD_REQUEST")


def test_pagerduty_webhook_refusals_use_the_standard_format(web: WebServer) -> None:
    good = json.dumps({"event": {"event_type": "incident.triggered", "data": {}}}).encode()

    unsigned = web.http.post("/webhooks/pagerduty", content=good, headers={"Content-Type": "application/json"})
    wrong = web.http.post("/webhooks/pagerduty", content=good, headers=_pd_headers(good, "not-the-secret"))
    broken = web.http.post("/webhooks/pagerduty", content=b"{nope", headers=_pd_headers(b"{nope"))
    array = web.http.post("/webhooks/pagerduty", content=b"[]", headers=_pd_headers(b"[]"))

    assert "X-PagerDuty-Signature" in _error(unsigned, 401, "INVALID_SIGNATURE")["message"]
    _error(wrong, 401, "INVALID_SIGNATURE")
    assert "not JSON" in _error(broken, 400, "BAD_REQUEST")["message"]
    assert "not an object" in _error(array, 400, "BAD_REQUEST")["message"]


def test_oversized_bodies_to_both_endpoints_get_payload_too_large(bot_env: Settings) -> None:
    from web import errors
    from web.app import mount_integrations

    app = FastAPI()
    errors.install(app)
    mount_integrations(app, bot_env.model_copy(update={"max_request_bytes": 2048}))
    big = json.dumps({"type": "event_callback", "padding": "x" * 5000}).encode()

    def streamed() -> Iterator[bytes]:
        # No Content-Length: the limit is counted as the chunks arrive.
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    with TestClient(app) as client:
        slack = client.post("/slack/events", content=big, headers={"Content-Type": "application/json", **slack_headers(big)})
        pagerduty = client.post("/webhooks/pagerduty", content=big, headers=_pd_headers(big))
        chunked = client.post("/slack/events", content=streamed(), headers={"Content-Type": "application/json", **slack_headers(big)})

    for response in (slack, pagerduty, chunked):
        assert "2048" in _error(response, 413, "PAYLOAD_TOO_LARGE")["message"]  # type: ignore[arg-type]
    assert "content-length" not in chunked.request.headers


def test_other_methods_on_the_delivery_paths_get_method_not_allowed(web: WebServer) -> None:
    for path in ("/slack/events", "/webhooks/pagerduty"):
        response = web.http.get(path)
        assert f"GET is not allowed on {path}" in _error(response, 405, "METHOD_NOT_ALLOWED")["message"]
        assert response.headers["Allow"] == "POST"
