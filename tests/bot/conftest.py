"""Fixtures for the Slack surface: stand-ins for Slack and Jira, a real web server with the Bolt app, a real RQ worker."""

from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis import Redis

STANDINS = Path(__file__).resolve().parent.parent / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from bot_harness import BOT_TOKEN, PD_WEBHOOK_SECRET, SIGNING_SECRET, WebServer, Worker  # noqa: E402
from standin_jira import JiraStandin  # noqa: E402
from standin_slack import SlackStandin  # noqa: E402

from core.runtime import get_store, reset_runtime  # noqa: E402
from core.settings import Settings, get_settings, reset_settings  # noqa: E402
from integrations.code.git import import_fast_export  # noqa: E402

SCENARIO = Path(__file__).resolve().parents[3] / "shared" / "scenarios" / "public" / "pub-02-notifications-worker"


@pytest.fixture
def scenario_repo(tmp_path: Path) -> Path:
    if not (SCENARIO / "repo.fi").exists() or shutil.which("git") is None:
        pytest.skip("scenario pub-02 or git not available")
    repo = tmp_path / "repo"
    repo = import_fast_export(SCENARIO / "repo.fi", repo.parent)
    return repo


@pytest.fixture
def catalog_file(tmp_path: Path, scenario_repo: Path) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(
        f"""
defaults:
  lookback: 3h
  after: 15m
services:
  notifications-worker:
    aliases: ["Notifications Worker", notif]
    pagerduty_service_ids: [PNW0RK1]
    jira_project: NOTIF
    logs:
      - {{kind: files, paths: ["{SCENARIO}/logs/*.log"]}}
    code:
      - {{kind: git, path: "{scenario_repo}", branch: main}}
    metrics:
      - {{kind: metrics_csv, path: "{SCENARIO}/metrics.csv"}}
    runbooks:
      - {{kind: runbooks_dir, path: "{SCENARIO}/runbooks"}}
  checkout:
    aliases: [checkout-api]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def bot_env(
    app_env: dict[str, str], slack: SlackStandin, jira: JiraStandin, catalog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    from bot.client import reset_client

    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "SERVICES_FILE": str(catalog_file),
        "PUBLIC_URL": "http://ir.test",
        "JIRA_URL": jira.url,
        "JIRA_USER": "bot@example.com",
        "JIRA_API_TOKEN": "jira-token",
        "PAGERDUTY_WEBHOOK_SECRETS": json.dumps(["pd-webhook-secret-old", PD_WEBHOOK_SECRET]),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_runtime()
    reset_client()
    # Migrate once up front: the first get_store() of two threads at once would run the migrations twice.
    get_store()
    yield get_settings()
    reset_client()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web(bot_env: Settings) -> Iterator[WebServer]:
    """The Slack and PagerDuty routers in a real uvicorn server on loopback."""
    from web import errors
    from web.app import mount_integrations

    app = FastAPI()
    errors.install(app)
    assert mount_integrations(app, bot_env) == ["/slack/events", "/webhooks/pagerduty"]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=10) as client:
        yield WebServer(url=url, http=client)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def worker(bot_env: Settings, redis_conn: Redis, queue_name: str) -> Iterator[Worker]:
    from bot.progress import register, unregister

    register()
    yield Worker(redis=redis_conn, queue_name=queue_name)
    unregister()
