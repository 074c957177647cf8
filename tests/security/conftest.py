"""Fixtures for the secrets suite: the fault suite's real `serve` + `worker` stack and the Slack, Jira and OpenAI
stand-ins, pointed at incident inputs with planted secrets; and, for the tests of one remote source each, the catalog
of one service with notify targets that record what they are sent.
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
TESTS = HERE.parent
for path in (HERE, TESTS / "faults", TESTS / "standins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bot_harness import BOT_TOKEN, PD_WEBHOOK_SECRET, SIGNING_SECRET  # noqa: E402
from harness import Stack, forget_queue  # noqa: E402
from planted import OneService, catalog_entry, make_repo, write_logs, write_metrics  # noqa: E402
from smtp_inbox import start_smtp  # noqa: E402
from standin_jira import JiraStandin  # noqa: E402
from standin_openai import StandinOpenAI  # noqa: E402
from standin_receiver import Receiver  # noqa: E402
from standin_slack import SlackStandin  # noqa: E402

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def planted_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Logs, metrics CSV and git repository carrying every planted secret; built once, read by every test."""
    root = tmp_path_factory.mktemp("planted")
    return {
        "logs": write_logs(root / "logs"),
        "metrics": write_metrics(root / "metrics.csv"),
        "repo": make_repo(root / "repo"),
    }


@pytest.fixture
def security_db(private_db: str) -> str:
    return private_db


@pytest.fixture
def security_queue() -> str:
    return f"test-security-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def security_env(
    tmp_path: Path,
    security_db: str,
    security_queue: str,
    planted_inputs: dict[str, Path],
    slack: SlackStandin,
    jira: JiraStandin,
    llm: StandinOpenAI,
) -> dict[str, str]:
    catalog = tmp_path / "services.yaml"
    catalog.write_text(catalog_entry(planted_inputs["repo"], planted_inputs["logs"], planted_inputs["metrics"]), encoding="utf-8")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "JIRA_", "PAGERDUTY_", "SERVICES_", "LLM_"))}
    return {
        **keep,
        "APP_ENV": "test",
        "DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": security_db,
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": security_queue,
        "SERVICES_FILE": str(catalog),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "JIRA_URL": jira.url,
        "JIRA_USER": "bot@example.com",
        "JIRA_API_TOKEN": "jira-token-for-tests",
        "PAGERDUTY_WEBHOOK_SECRETS": json.dumps([PD_WEBHOOK_SECRET]),
        "SESSION_SECRET": "security-session-secret",
        "API_RATE_LIMIT_PER_KEY": "100000/minute",
        "API_RATE_LIMIT_PER_IP": "100000/minute",
        "OPENAI_API_KEY": "sk-test-security-standin-0000",
        "OPENAI_BASE_URL": llm.base_url,
        "LLM_TIMEOUT_S": "5",
        "LLM_MAX_RETRIES": "0",
        "LLM_DEADLINE_S": "30",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


@pytest.fixture
def stack(security_env: dict[str, str], tmp_path: Path, security_queue: str) -> Iterator[Stack]:
    running = Stack(env=security_env, log_dir=tmp_path)
    try:
        yield running
    finally:
        running.close()
        forget_queue(security_env["REDIS_URL"], security_queue)


@pytest.fixture
def one_service(app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OneService]:
    receiver = Receiver().start()
    smtp, inbox = start_smtp()
    yield OneService(tmp_path / "services.yaml", receiver, inbox, smtp.port, app_env["QUEUE_NAME"], monkeypatch)
    smtp.stop()
    receiver.stop()
