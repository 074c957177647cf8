"""Every inbound endpoint refuses a body above MAX_REQUEST_BYTES with 413 and the standard error, whether the size
is declared (Content-Length) or only discovered while streaming (chunked). Runs `python app.py serve` for real.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

FAULTS = Path(__file__).resolve().parents[1] / "faults"
STANDINS = Path(__file__).resolve().parents[1] / "standins"
for path in (FAULTS, STANDINS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bot_harness import BOT_TOKEN, PD_WEBHOOK_SECRET, SIGNING_SECRET  # noqa: E402
from harness import Stack, Web  # noqa: E402

from core.store import Store  # noqa: E402
from web.auth import create_api_key  # noqa: E402

LIMIT = 4096
ENDPOINTS = [
    ("/api/v1/investigations", "application/json"),
    ("/api/v1/investigations/inv_000000000000/questions", "application/json"),
    ("/api/v1/investigations/inv_000000000000/jira", "application/json"),
    ("/api/v1/investigations/inv_000000000000/rerun", "application/json"),
    ("/slack/events", "application/x-www-form-urlencoded"),
    ("/slack/events", "application/json"),
    ("/webhooks/pagerduty", "application/json"),
    ("/login", "application/x-www-form-urlencoded"),
    ("/logout", "application/x-www-form-urlencoded"),
    ("/investigations/inv_000000000000/rerun", "application/x-www-form-urlencoded"),
    ("/investigations/inv_000000000000/jira", "application/x-www-form-urlencoded"),
    ("/investigations/inv_000000000000/ask", "application/x-www-form-urlencoded"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Web, str]]:
    tmp = tmp_path_factory.mktemp("limits")
    database_url = f"sqlite:///{tmp / 'ir.db'}"
    key = create_api_key("limits", ["admin"], store=Store.from_url(database_url))[0]
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "JIRA_", "PAGERDUTY_", "SERVICES_"))}
    env = {
        **keep,
        "APP_ENV": "test",
        "DATA_DIR": str(tmp / "var"),
        "DATABASE_URL": database_url,
        "QUEUE_NAME": f"test-limits-{os.getpid()}",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "PAGERDUTY_WEBHOOK_SECRETS": json.dumps([PD_WEBHOOK_SECRET]),
        "MAX_REQUEST_BYTES": str(LIMIT),
        "SESSION_SECRET": "limits",
        "API_RATE_LIMIT_PER_IP": "100000/minute",
        "API_RATE_LIMIT_PER_KEY": "100000/minute",
        "LOG_LEVEL": "warning",
    }
    stack = Stack(env=env, log_dir=tmp)
    try:
        yield stack.web(), key
    finally:
        stack.close()


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE" and str(LIMIT) in error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize(("path", "content_type"), ENDPOINTS)
def test_declared_oversized_body_is_413_on_every_inbound_endpoint(served: tuple[Web, str], path: str, content_type: str) -> None:
    web, key = served
    with web.client(key) as client:
        assert_413(client.post(path, content=b"a" * (LIMIT + 1), headers={"Content-Type": content_type}))


# These take no body and answer without reading one, so a stream has nothing to fill; the declared case covers them.
BODILESS = {"/api/v1/investigations/inv_000000000000/jira", "/api/v1/investigations/inv_000000000000/rerun", "/logout"}


@pytest.mark.parametrize(("path", "content_type"), [e for e in ENDPOINTS if e[0] not in BODILESS])
def test_streamed_oversized_body_is_413_on_every_endpoint_that_reads_one(served: tuple[Web, str], path: str, content_type: str) -> None:
    web, key = served

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"a" * 1024

    with web.client(key) as client:
        response = client.post(path, content=chunks(), headers={"Content-Type": content_type})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_413(response)
