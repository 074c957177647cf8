"""Shared fixtures: real PostgreSQL and Redis on loopback, a SQLite file, clean settings.

Each test session gets its own PostgreSQL database and its own RQ queue name, so
two suites on one machine (developers, CI) never see each other's rows or jobs.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine, text

from core.runtime import reset_runtime
from core.settings import reset_settings
from core.store import Store

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")
# Every investigation looks for similar past incidents: the hashed-word embedder keeps the many worker and web
# processes the suite starts from loading the local model (4 s and 300 MB each); tests of the model ask for it.
os.environ.setdefault("EMBEDDINGS", "lexical")

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SCENARIOS = SHARED / "scenarios" / "public"
STANDINS = Path(__file__).resolve().parent / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from standin_jira import JiraStandin  # noqa: E402
from standin_openai import StandinOpenAI  # noqa: E402
from standin_slack import SlackStandin  # noqa: E402


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own on the machine's server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from core.db import get_engine

        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with fresh_database("ir_test") as url:
        yield url


@pytest.fixture
def private_db() -> Iterator[str]:
    """A database for one test, so that row counts are exact."""
    with fresh_database("ir_private") as url:
        yield url


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    standin = SlackStandin().start()
    yield standin
    standin.stop()


@pytest.fixture
def jira() -> Iterator[JiraStandin]:
    standin = JiraStandin().start()
    yield standin
    standin.stop()


@pytest.fixture
def llm() -> Iterator[StandinOpenAI]:
    with StandinOpenAI() as standin:
        yield standin


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ir.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ir.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Store:
    return Store.from_url(db_url)


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    conn = Redis.from_url(REDIS_URL)
    conn.ping()
    yield conn
    conn.close()


@pytest.fixture
def queue_name() -> str:
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, queue_name: str) -> Iterator[dict[str, str]]:
    """A clean test environment: SQLite under tmp, the real Redis, a private queue, no Slack or LLM."""
    env = {
        "APP_ENV": "test",
        "DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ir.db'}",
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": queue_name,
        "LOG_FORMAT": "console",
    }
    for key in ("OPENAI_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "JIRA_URL", "SERVICES_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_runtime()
    yield env
    reset_settings()
    reset_runtime()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding a `slow` test go first.

    Under `make test` (`-n 2 --dist loadfile --no-loadscope-reorder`) xdist hands out modules in this order: a
    module that waits out a minute of RQ heartbeat, started last, ran alone while the other core sat idle.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
