"""One PyGithub client per repository and the gate every one of its requests passes through.

The gate enforces the read's deadline and the source's call budget, and waits out a
rate limit when it resets before the deadline; PyGithub's own retries and sleeps are
off because they would outlive the read.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, TypeVar

import requests
import structlog
from github import Auth, Github
from github.GithubException import BadCredentialsException, GithubException, RateLimitExceededException, UnknownObjectException

from integrations.cache import cache_key
from integrations.code.github import GitHubOptions
from integrations.code.host_common import (
    CallBudget,
    Deadline,
    FatalHostError,
)
from integrations.errors import SourceError
from integrations.plugin import secret_from_env

log = structlog.get_logger(__name__)

T = TypeVar("T")
PER_PAGE: Final = 100


class GitHubApi:
    """One PyGithub client for one repository, with the gate every request passes through."""

    def __init__(self, options: GitHubOptions) -> None:
        self.options = options
        self.base_url = options.base_url.rstrip("/")
        self.repository = options.repository
        token = secret_from_env(options.token_env, purpose=f"GitHub token for {options.repository}") if options.token_env else None
        self.client = Github(
            base_url=self.base_url,
            auth=Auth.Token(token.get_secret_value()) if token is not None else None,
            # PyGithub takes whole seconds; a request never outlives the read it belongs to.
            timeout=max(1, math.ceil(min(options.timeout_s, options.deadline_s))),
            # Retries and rate-limit sleeps are ours, bounded by the read's deadline; PyGithub's would sleep past it.
            retry=None,
            per_page=PER_PAGE,
            pool_size=options.parallel,
            seconds_between_requests=None,
            seconds_between_writes=None,
            # Lazy: an object costs a request only when read, and every object shares the one gated requester below.
            lazy=True,
        )
        self.repo = self.client.get_repo(options.repository)
        self.budget = CallBudget(options.max_api_calls)
        self._local = threading.local()
        requester = self.client.requester
        # Every request of every object built from this client passes the gate: deadline, budget, rate-limit waits.
        requester.requestJsonAndCheck = partial(self._gate, requester.requestJsonAndCheck)  # type: ignore[method-assign]

    @property
    def api_calls(self) -> int:
        return self.budget.used

    # --- the gate -----------------------------------------------------------------------------------

    def within(self, deadline: Deadline, call: Callable[[], T], what: str) -> T:
        """`call()` on this thread with `deadline` governing its requests; PyGithub and transport errors as SourceError."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            return call()
        except SourceError:
            raise
        except BadCredentialsException:
            raise FatalHostError(self._credentials_problem()) from None
        except UnknownObjectException:
            raise FatalHostError(
                f"repository {self.repository} not found at {self.base_url} (404): check its name and the token's access"
            ) from None
        except GithubException as exc:
            raise SourceError(f"GitHub at {self.base_url} answered {exc.status} to {what}{_message(exc)}") from None
        except requests.RequestException as exc:
            raise SourceError(f"GitHub at {self.base_url} cannot be reached ({type(exc).__name__})") from None
        finally:
            self._local.deadline = previous

    def _gate(self, request: Callable[..., tuple[dict[str, Any], Any]], *args: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
        deadline: Deadline = getattr(self._local, "deadline", None) or Deadline(self.options.deadline_s)
        while True:
            if deadline.expired():
                raise SourceError(f"GitHub at {self.base_url} did not answer within the source deadline of {deadline.seconds:g}s")
            if not self.budget.take():
                raise SourceError(f"GitHub source for {self.repository} spent its budget of {self.budget.limit} API calls")
            try:
                return request(*args, **kwargs)
            except RateLimitExceededException as exc:
                self._wait_out(exc, deadline)
            except GithubException as exc:
                if exc.status != 429:
                    raise
                self._wait_out(exc, deadline)

    def _wait_out(self, exc: GithubException, deadline: Deadline) -> None:
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        wait_s: float | None = None
        if "retry-after" in headers:
            wait_s = _number(headers["retry-after"])
        elif headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            reset = _number(headers["x-ratelimit-reset"])
            wait_s = None if reset is None else max(0.0, reset - time.time()) + 0.5
        if wait_s is None:
            # A secondary limit without a hint: GitHub asks for at least a minute.
            wait_s = 60.0
        if wait_s >= deadline.remaining():
            resets = (datetime.now(UTC) + timedelta(seconds=wait_s)).strftime("%H:%M:%S UTC")
            raise SourceError(
                f"GitHub at {self.base_url} is rate-limiting {self.repository} ({exc.status}) until {resets}, "
                f"past the source deadline of {deadline.seconds:g}s"
            ) from None
        log.info("github_rate_limited", repository=self.repository, wait_s=round(wait_s, 1))
        time.sleep(wait_s)

    def _credentials_problem(self) -> str:
        where = f"the token in {self.options.token_env}" if self.options.token_env else "an anonymous request"
        return f"GitHub at {self.base_url} refused {where} (401): check the token and its read access to {self.repository}"

    def key(self, *parts: object) -> str:
        return cache_key("github", {"base_url": self.base_url, "repository": self.repository}, *parts)


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    text = str(data.get("message") or "").splitlines()
    return f" ({text[0][:120]})" if text else ""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
