"""Calling a remote store within a source's deadline: what every remote kind shares.

A remote kind raises `RetryableError` for answers worth another try (429, throttling,
5xx, a timeout), with the wait the server asked for, and `SourceError` for the rest;
`with_retries` retries the first kind with tenacity, never past the `Deadline`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

from integrations.errors import SourceError

T = TypeVar("T")


class RetryableError(SourceError):
    """A 429 or 5xx answer: worth another try if the deadline allows; `wait_s` is what the server asked for."""

    def __init__(self, message: str, *, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class Deadline:
    """The source's deadline, shared by its queries: each request gets what remains, capped by its own timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def timeout(self, cap: float) -> float:
        left = self.remaining()
        if left <= 0:
            raise SourceError(f"no time left within the source deadline of {self.seconds:g}s")
        return min(cap, left)


def with_retries(call: Callable[[], T], *, retries: int, deadline: Deadline, sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()` again on RetryableError, waiting what the server asked (or backing off), never past the deadline."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = error.wait_s if isinstance(error, RetryableError) else None
        backoff = min(0.25 * 2 ** (state.attempt_number - 1), 4.0)
        pause = asked if asked is not None else backoff
        # A wait that ends past the deadline is pointless: give up now with the server's answer.
        if pause >= deadline.remaining():
            raise error if error is not None else SourceError("deadline reached")
        return pause

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, RetryableError)),
        stop=stop_after_attempt(retries + 1) | stop_after_delay(deadline.seconds),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
