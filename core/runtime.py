"""Process-wide handles built from settings: the store and the Redis connection (the catalog: `integrations.catalog`).

Built lazily so that importing a module never opens a connection.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from redis import Redis

from core.settings import get_settings
from core.store import Store

_store_lock = threading.Lock()


@lru_cache(maxsize=4)
def _store_for(url: str) -> Store:
    return Store.from_url(url)


def get_store() -> Store:
    # The first call migrates the schema; two threads doing that at once would both try to create the tables.
    with _store_lock:
        return _store_for(get_settings().effective_database_url)


@lru_cache(maxsize=4)
def _redis_for(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


def get_redis() -> Redis:
    return _redis_for(get_settings().redis_url)


def reset_runtime() -> None:
    _store_for.cache_clear()
    _redis_for.cache_clear()
