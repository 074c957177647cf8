"""A small, bounded cache for what remote sources read, shared by every worker through Redis.

A Re-run, a follow-up question or a storm of alerts for one service asks the same
source for the same window within minutes; commits are immutable by sha. Values are
JSON (through a pydantic TypeAdapter, never pickle), compressed, and skipped when
larger than `MAX_VALUE_BYTES`. When Redis does not answer the cache is simply absent:
reading the source again is always correct, only slower.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Callable
from typing import Any, Final, TypeVar

import structlog
from pydantic import BaseModel, TypeAdapter
from redis.exceptions import RedisError

from core.metrics import inc

log = structlog.get_logger(__name__)

T = TypeVar("T")
PREFIX: Final = "ir:source-cache:"
MAX_VALUE_BYTES: Final = 8 * 1024 * 1024
# Options that hold secrets are excluded from keys by name: a key is a hash, but it is also logged on a miss.
_SECRET_WORDS: Final = ("token", "password", "secret", "key")
# After Redis fails, read sources directly for a while: a dead Redis must not add a connect timeout to every read.
PAUSE_AFTER_FAILURE_S: Final = 30.0
_paused_until = 0.0


def cache_key(kind: str, options: BaseModel | dict[str, Any], *parts: object) -> str:
    """A key for one read: the kind, its options (secrets left out) and what the read asked for (window, sha, ...)."""
    data = options.model_dump(mode="json") if isinstance(options, BaseModel) else dict(options)
    visible = {k: v for k, v in sorted(data.items()) if not any(word in k.lower() for word in _SECRET_WORDS) or k.endswith("_env")}
    digest = hashlib.sha256(repr((kind, visible, [str(p) for p in parts])).encode()).hexdigest()[:32]
    return f"{PREFIX}{kind}:{digest}"


def cached(key: str, ttl_s: int, adapter: TypeAdapter[T], compute: Callable[[], T]) -> T:
    """`compute()`'s value, from the cache when a fresh one is there; stored for `ttl_s` seconds otherwise."""
    global _paused_until
    kind = key.removeprefix(PREFIX).split(":", 1)[0]
    if time.monotonic() < _paused_until:
        return compute()
    # Imported here: core.runtime brings the database layer, which a CLI listing kinds has no use for.
    from core.runtime import get_redis

    redis = get_redis()
    try:
        stored = redis.get(key)
    except (RedisError, OSError):
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_S
        return compute()
    if isinstance(stored, bytes):
        try:
            value = adapter.validate_json(zlib.decompress(stored))
        except (zlib.error, ValueError):
            log.warning("source_cache_unreadable", key=key)
        else:
            inc("source_cache_total", kind=kind, outcome="hit")
            return value
    inc("source_cache_total", kind=kind, outcome="miss")
    value = compute()
    blob = zlib.compress(adapter.dump_json(value), 3)
    if len(blob) <= MAX_VALUE_BYTES:
        try:
            redis.set(key, blob, ex=ttl_s)
        except (RedisError, OSError):
            _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_S
    return value
