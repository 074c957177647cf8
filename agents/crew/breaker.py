"""A circuit breaker for the LLM endpoint.

State lives in Redis when one answers: workers are separate processes (often on
separate hosts) calling the same endpoint, and when it is down every worker
finding out on its own would multiply the failed calls and the time each
investigation waits before falling back to the offline report. Without Redis
(the embedded default runs jobs inline) the state is kept in this process, and
a Redis error mid-run also falls back to it: the breaker must never become a
reason for an investigation to fail.

Closed → open after `threshold` consecutive failed calls; open for `cooldown_s`;
after that the next call is a probe: one more failure opens it again at once,
a success closes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import structlog
from redis import Redis
from redis.exceptions import RedisError

from agents import ops_alerts

log = structlog.get_logger(__name__)

THRESHOLD = 5
COOLDOWN_S = 60.0
# Failures older than this no longer count as "consecutive".
WINDOW_S = 300.0


@dataclass
class _LocalState:
    failures: int = 0
    open_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_local_states: dict[str, _LocalState] = {}
_local_lock = threading.Lock()


def _local(name: str) -> _LocalState:
    with _local_lock:
        return _local_states.setdefault(name, _LocalState())


class Breaker:
    def __init__(
        self,
        name: str = "llm",
        *,
        redis: Redis | None = None,
        threshold: int = THRESHOLD,
        cooldown_s: float = COOLDOWN_S,
        on_open: Callable[[Breaker], object] | None = None,
    ) -> None:
        self.name = name
        self.redis = redis
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        # Told each time this process opens the breaker (the ops alert); it must not raise.
        self.on_open = on_open
        self._fail_key = f"ir:breaker:{name}:failures"
        self._open_key = f"ir:breaker:{name}:open"

    @property
    def shared(self) -> bool:
        return self.redis is not None

    def allow(self) -> bool:
        if self.redis is not None:
            try:
                return not self.redis.exists(self._open_key)
            except (RedisError, OSError):
                self._lose_redis()
        state = _local(self.name)
        with state.lock:
            return time.monotonic() >= state.open_until

    def record_success(self) -> None:
        if self.redis is not None:
            try:
                self.redis.delete(self._fail_key)
                return
            except (RedisError, OSError):
                self._lose_redis()
        state = _local(self.name)
        with state.lock:
            state.failures = 0

    def record_failure(self) -> None:
        opened = self._record_failure()
        if opened and self.on_open is not None:
            self.on_open(self)

    def _record_failure(self) -> bool:
        """Count a failure; True when it opened the breaker."""
        if self.redis is not None:
            try:
                return self._record_failure_shared(self.redis)
            except (RedisError, OSError):
                self._lose_redis()
        state = _local(self.name)
        with state.lock:
            state.failures += 1
            if state.failures < self.threshold:
                return False
            state.open_until = time.monotonic() + self.cooldown_s
            # Half-open after the cooldown: the first failure then reopens it.
            state.failures = self.threshold - 1
        log.warning("llm_breaker_opened", cooldown_s=self.cooldown_s, shared=False)
        return True

    def _record_failure_shared(self, redis: Redis) -> bool:
        pipe = redis.pipeline()
        pipe.incr(self._fail_key)
        pipe.expire(self._fail_key, int(WINDOW_S))
        failures = int(pipe.execute()[0])
        if failures < self.threshold:
            return False
        pipe = redis.pipeline()
        pipe.set(self._open_key, "1", px=int(self.cooldown_s * 1000))
        pipe.set(self._fail_key, self.threshold - 1, ex=int(WINDOW_S))
        pipe.execute()
        log.warning("llm_breaker_opened", cooldown_s=self.cooldown_s, shared=True)
        return True

    def _lose_redis(self) -> None:
        log.warning("llm_breaker_redis_unavailable", fallback="in-process")
        self.redis = None

    def reset(self) -> None:
        """Close the breaker (tests, and an operator who fixed the endpoint)."""
        if self.redis is not None:
            try:
                self.redis.delete(self._fail_key, self._open_key)
            except (RedisError, OSError):
                self._lose_redis()
        state = _local(self.name)
        with state.lock:
            state.failures = 0
            state.open_until = 0.0


@lru_cache(maxsize=4)
def _connection(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)


def _tell_ops(breaker: Breaker) -> None:
    ops_alerts.breaker_opened(breaker.name, breaker.threshold, breaker.cooldown_s)


def breaker_for(redis_url: str | None, name: str) -> Breaker:
    """A breaker on Redis when it answers a ping, else in this process.

    Only a shared breaker tells the ops targets it opened: their alert is deduplicated through the same Redis.
    """
    if redis_url:
        try:
            conn = _connection(redis_url)
            conn.ping()
            return Breaker(name, redis=conn, on_open=_tell_ops)
        except (RedisError, OSError, ValueError):
            log.info("llm_breaker_local", reason="redis not answering")
    return Breaker(name)
