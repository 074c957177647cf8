"""Process-wide handles built from settings: the store and the Redis connection.

Built lazily so that importing a module never opens a connection.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from redis import Redis

from core.catalog import Catalog, empty_catalog, load_catalog
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
    _catalog_for.cache_clear()


@lru_cache(maxsize=4)
def _catalog_for(path: str | None) -> Catalog:
    if path is None:
        return empty_catalog()
    return load_catalog(Path(path))


def get_catalog() -> Catalog:
    """The service catalog named by SERVICES_FILE (empty when unset); raises CatalogError when invalid."""
    path = get_settings().services_file
    return _catalog_for(str(path) if path else None)
