"""Fixtures for the fault suite: stand-ins for Slack, Jira and the LLM, a private PostgreSQL database, and a Stack
that runs the real web and worker processes against them and always ends them.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STANDINS = HERE.parent / "standins"
for path in (HERE, STANDINS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bot_harness import BOT_TOKEN, PD_WEBHOOK_SECRET, SIGNING_SECRET  # noqa: E402
from harness import EXAMPLE, Stack, checkout_service, forget_queue  # noqa: E402
from standin_jira import JiraStandin  # noqa: E402
from standin_slack import SlackStandin  # noqa: E402

from core.store import Store  # noqa: E402
from integrations.code.git import import_fast_export  # noqa: E402
from web.auth import create_api_key  # noqa: E402

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def fault_db(private_db: str) -> str:
    """A database of this test's own, so row counts are exact."""
    return private_db


@pytest.fixture(scope="session")
def example_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("faults") / "checkout-repo"
    repo = import_fast_export(EXAMPLE / "repo.fi", repo.parent)
    return repo


@pytest.fixture
def catalog_file(tmp_path: Path, example_repo: Path) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text("defaults: {lookback: 2h, after: 15m}\nservices:\n" + checkout_service(example_repo), encoding="utf-8")
    return path


@pytest.fixture
def queue_name() -> str:
    return f"test-faults-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def base_env(tmp_path: Path, fault_db: str, queue_name: str, catalog_file: Path, slack: SlackStandin, jira: JiraStandin) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "JIRA_", "PAGERDUTY_", "SERVICES_", "LLM_"))}
    return {
        **keep,
        "APP_ENV": "test",
        "DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": fault_db,
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": queue_name,
        "SERVICES_FILE": str(catalog_file),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "JIRA_URL": jira.url,
        "JIRA_USER": "bot@example.com",
        "JIRA_API_TOKEN": "jira-token-for-tests",
        "PAGERDUTY_WEBHOOK_SECRETS": json.dumps([PD_WEBHOOK_SECRET]),
        "SESSION_SECRET": "fault-session-secret",
        "API_RATE_LIMIT_PER_KEY": "100000/minute",
        "API_RATE_LIMIT_PER_IP": "100000/minute",
        "WORKER_SWEEP_INTERVAL_S": "1",
        "WORKER_HEARTBEAT_S": "1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


@pytest.fixture
def stack(base_env: dict[str, str], tmp_path: Path, queue_name: str) -> Iterator[Stack]:
    running = Stack(env=base_env, log_dir=tmp_path)
    try:
        yield running
    finally:
        running.close()
        forget_queue(base_env["REDIS_URL"], queue_name)


@pytest.fixture
def db(fault_db: str) -> Store:
    return Store.from_url(fault_db)


@pytest.fixture
def api_key(db: Store) -> str:
    return create_api_key("faults", ["admin"], store=db)[0]
