"""The one door every LLM request of a run goes through: an httpx transport.

The openai SDK (which crewai's native provider uses) accepts an `httpx.Client`;
ours carries this transport, so each request — whichever agent, task or retry
sent it — is checked against the run's deadline, circuit breaker and token
budget, has its message text redacted, is retried with backoff, and has its
`usage` read from the answer. Doing this below crewai rather than in its hooks
means nothing it adds (converter calls, forced final answers) escapes the bounds.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import httpx
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from agents.crew.breaker import Breaker
from agents.crew.budget import Budget, BudgetExceeded, Usage, estimate_tokens
from core.metrics import inc
from core.redaction import redact
from core.tracing import tracer

log = structlog.get_logger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# A status that will not get better by calling again, but says the endpoint is unusable (bad key, gone).
BREAKER_STATUSES = RETRY_STATUSES | {401, 403, 404}
MAX_RETRY_AFTER_S = 30.0


class CallRefused(Exception):
    """We did not send the request: the run is past its deadline, cancelled, or the breaker is open."""


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass
class Gate:
    """The shared state of one run (or one follow-up answer) that every request is checked against."""

    budget: Budget
    breaker: Breaker
    deadline: float
    max_retries: int = 2
    # Specialists whose share is spent get a short final answer instead of an exception, so the commander still runs.
    soft_stop_agents: frozenset[str] = frozenset()
    soft_stops: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise CallRefused("the crew run was stopped")
        if self.remaining_s() <= 0:
            raise CallRefused("the crew's deadline has passed")
        if not self.breaker.allow():
            raise CallRefused("the LLM circuit breaker is open after repeated failures")


class BoundedTransport(httpx.BaseTransport):
    """Sends an agent's requests through the run's gate; one instance per agent."""

    def __init__(self, gate: Gate, agent: str, inner: httpx.BaseTransport | None = None) -> None:
        self.gate = gate
        self.agent = agent
        self.inner = inner or httpx.HTTPTransport(verify=_ssl_context())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.gate.check()
        request = _redacted(request)
        estimate = estimate_tokens(request.content)
        try:
            self.gate.budget.reserve(self.agent, estimate)
        except BudgetExceeded as exc:
            if self.agent in self.gate.soft_stop_agents:
                self.gate.soft_stops.append(self.agent)
                inc("llm_calls_total", outcome="budget_stop")
                return _final_answer(request, f"(No further analysis: {exc}. Report only what you found so far.)")
            inc("llm_calls_total", outcome="budget_refused")
            raise
        usage: Usage | None = None
        with tracer().start_as_current_span(
            "llm.call", attributes={"llm.agent": self.agent, "llm.estimated_input_tokens": estimate}
        ) as span:
            try:
                response = self._send_with_retries(request)
                usage = _usage_of(response)
                span.set_attribute("http.status_code", response.status_code)
                if usage is not None:
                    span.set_attribute("llm.input_tokens", usage.input_tokens)
                    span.set_attribute("llm.output_tokens", usage.output_tokens)
            finally:
                self.gate.budget.settle(self.agent, estimate, usage)
        self._account(response, usage)
        return response

    def _send_with_retries(self, request: httpx.Request) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.gate.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type((_Retryable, httpx.TimeoutException, httpx.TransportError)),
            before_sleep=lambda state: log.info(
                "llm_call_retry", agent=self.agent, attempt=state.attempt_number, error=str(state.outcome and state.outcome.exception())
            ),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.gate.check()
                    response = self.inner.handle_request(request)
                    if response.status_code in RETRY_STATUSES:
                        response.read()
                        raise _Retryable(response)
                    response.read()
        except _Retryable as exc:
            # Out of retries: hand the last error answer to the SDK, which raises its own typed error.
            self._fail(f"HTTP {exc.response.status_code}")
            return exc.response
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            self._fail(type(exc).__name__)
            raise
        except CallRefused as exc:
            # Refused between attempts (deadline, breaker): the attempt before it failed all the same.
            self._fail(str(exc))
            raise
        return response

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        delay = wait_exponential_jitter(initial=0.5, max=8.0, jitter=0.5)(state)
        if isinstance(error, _Retryable):
            after = _retry_after_s(error.response)
            if after is not None:
                delay = min(after, MAX_RETRY_AFTER_S)
        if delay >= self.gate.remaining_s():
            raise CallRefused(f"the crew's deadline leaves no time to retry after {error}")
        return delay

    def _fail(self, reason: str) -> None:
        self.gate.failures.append(f"{self.agent}: {reason}")
        self.gate.breaker.record_failure()
        inc("llm_calls_total", outcome="error")

    def _account(self, response: httpx.Response, usage: Usage | None) -> None:
        if response.status_code in BREAKER_STATUSES:
            if response.status_code not in RETRY_STATUSES:
                self._fail(f"HTTP {response.status_code}")
            return
        if response.is_success:
            self.gate.breaker.record_success()
            inc("llm_calls_total", outcome="ok")
        else:
            inc("llm_calls_total", outcome=f"http_{response.status_code}")
        if usage is not None:
            inc("llm_tokens_total", usage.input_tokens, kind="input")
            inc("llm_tokens_total", usage.output_tokens, kind="output")

    def close(self) -> None:
        self.inner.close()


class BoundedAsyncTransport(httpx.AsyncBaseTransport):
    """The same door for the SDK's async client: the blocking work runs in a thread."""

    def __init__(self, sync: BoundedTransport) -> None:
        self.sync = sync

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        body = await request.aread()
        plain = httpx.Request(request.method, request.url, headers=request.headers, content=body, extensions=request.extensions)
        response = await asyncio.to_thread(self.sync.handle_request, plain)
        return httpx.Response(response.status_code, headers=response.headers, content=response.content, request=request)


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~70 ms; one context serves every agent of every run.
    return httpx.create_ssl_context()


def http_clients(gate: Gate, agent: str) -> tuple[httpx.Client, httpx.AsyncClient]:
    transport = BoundedTransport(gate, agent)
    return httpx.Client(transport=transport), httpx.AsyncClient(transport=BoundedAsyncTransport(transport))


def why_failed(exc: BaseException, timeout_s: float) -> str:
    """One line for the report, from the exception chain (the SDK and crewai wrap ours)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CallRefused | BudgetExceeded):
            return str(current)
        name = type(current).__name__
        if "Timeout" in name:
            return f"the LLM did not answer within {timeout_s:.0f}s"
        status = getattr(current, "status_code", None)
        if isinstance(status, int):
            return f"the LLM endpoint answered HTTP {status}"
        current = current.__cause__ or current.__context__
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _redacted(request: httpx.Request) -> httpx.Request:
    """The request with every string in its JSON body redacted: the last check before text leaves the worker."""
    try:
        body = json.loads(request.read() or b"{}")
    except ValueError:
        return request
    clean = {key: (redact(value) if key in ("messages", "tools", "input", "instructions") else value) for key, value in body.items()}
    if clean == body:
        return request
    content = json.dumps(clean).encode()
    headers = httpx.Headers(request.headers)
    headers["Content-Length"] = str(len(content))
    return httpx.Request(request.method, request.url, headers=headers, content=content, extensions=request.extensions)


def _usage_of(response: httpx.Response) -> Usage | None:
    if not response.is_success:
        return None
    try:
        usage: Any = json.loads(response.content).get("usage") or {}
    except (ValueError, AttributeError):
        return Usage(calls=1)
    return Usage(
        calls=1,
        input_tokens=int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
    )


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _final_answer(request: httpx.Request, text: str) -> httpx.Response:
    document = {
        "id": "chatcmpl-budget-stop",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "budget-stop",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    return httpx.Response(200, json=document, request=request)
