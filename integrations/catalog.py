"""The service catalog as every process reads it: its shape checked by core, each source's kind and options by the registry."""

from __future__ import annotations

import threading
from pathlib import Path

from core.catalog import Catalog, empty_catalog, load_catalog
from core.settings import get_settings
from integrations.registry import check_source

_lock = threading.Lock()
_cache: dict[tuple[str, int, int, int, int], Catalog] = {}


def load_checked_catalog(path: Path) -> Catalog:
    """A catalog whose every source names a known kind with options that kind accepts; CatalogError listing all problems."""
    return load_catalog(path, check_source)


def get_catalog() -> Catalog:
    """The catalog named by SERVICES_FILE (empty when unset); raises CatalogError when invalid.

    Kept while the file is unchanged: an edit is picked up by the next investigation
    without a restart, and a broken edit is reported, not half-applied.
    """
    configured = get_settings().services_file
    if configured is None:
        return empty_catalog()
    path = Path(configured)
    try:
        stat = path.stat()
        # The inode, not a resolved path, notices a symlink swapped to a new file (a Kubernetes ConfigMap update) without
        # resolving every component of the path on each call, which showed in the front door's profile.
        key = (str(path), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except OSError:
        return load_checked_catalog(path)
    with _lock:
        if (cached := _cache.get(key)) is None:
            _cache.clear()
            cached = _cache[key] = load_checked_catalog(path)
        return cached
