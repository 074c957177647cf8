"""A real web process (uvicorn in a subprocess on a free loopback port) over real PostgreSQL and Redis.

The test process writes rows and keys straight into the same database and
publishes progress on the same Redis; the server is only ever reached over HTTP.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from web_harness import Keys, Server, start_server, stop_server  # noqa: E402

from core.store import Store  # noqa: E402
from web.auth import create_api_key  # noqa: E402


@pytest.fixture(scope="session")
def web_store(pg_url: str) -> Store:
    return Store.from_url(pg_url)


@pytest.fixture(scope="session")
def server(pg_url: str, web_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("web"), pg_url)
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def spawn(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start extra servers with their own settings (rate limits, dead dependencies); all stopped at the end."""
    started: list[Server] = []

    def make(database_url: str | None = None, **overrides: str) -> Server:
        running = start_server(tmp_path_factory.mktemp("web-extra"), database_url or pg_url, **overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        stop_server(running)


@pytest.fixture(scope="session")
def keys(web_store: Store) -> Keys:
    return Keys(*(create_api_key(f"test-{scope}", [scope], store=web_store)[0] for scope in ("read", "write", "admin")))
