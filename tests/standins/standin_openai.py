"""A local OpenAI-compatible server for tests: `POST /v1/chat/completions` on 127.0.0.1, scripted per call.

Tests hand it a `script(call) -> Reply` that sees the parsed request (and how
many calls came before) and decides the answer: plain text, native tool calls,
a JSON answer for `response_format: json_schema`, a slow answer, an error with
Retry-After, or a body that is not JSON. Every request body is recorded with
its arrival and finish times so tests can assert on what left the worker and
on how calls overlapped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer


@dataclass
class Reply:
    content: str | None = "ok"
    tool_calls: list[dict[str, Any]] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw: bytes | None = None
    usage: dict[str, int] | None = None

    @staticmethod
    def text(content: str, **kwargs: Any) -> Reply:
        return Reply(content=content, **kwargs)

    @staticmethod
    def json(document: Any, **kwargs: Any) -> Reply:
        return Reply(content=json.dumps(document), **kwargs)

    @staticmethod
    def tool(name: str, arguments: dict[str, Any], *, call_id: str | None = None, **kwargs: Any) -> Reply:
        call = {
            "id": call_id or f"call_{name}_{time.monotonic_ns()}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        return Reply(content=None, tool_calls=[call], **kwargs)

    @staticmethod
    def error(status: int, *, retry_after: float | None = None, **kwargs: Any) -> Reply:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = json.dumps(
            {
                "error": {
                    "message": f"stand-in error {status}",
                    "type": "server_error" if status >= 500 else "rate_limit",
                    "code": str(status),
                }
            }
        )
        return Reply(content=None, status=status, headers=headers, raw=body.encode(), **kwargs)

    @staticmethod
    def malformed(**kwargs: Any) -> Reply:
        return Reply(content=None, raw=b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "trunc', **kwargs)


@dataclass
class Call:
    """One request as the stand-in saw it."""

    index: int
    body: dict[str, Any]
    headers: dict[str, str]
    arrived: float
    finished: float = 0.0
    status: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def text(self) -> str:
        """Everything the request carried, as one string (for 'never in a request' checks)."""
        return json.dumps(self.body)

    @property
    def system(self) -> str:
        return "\n".join(str(m.get("content") or "") for m in self.messages if m.get("role") == "system")

    @property
    def last_role(self) -> str:
        return str(self.messages[-1].get("role")) if self.messages else ""

    @property
    def wants_json_schema(self) -> bool:
        fmt = self.body.get("response_format") or {}
        return isinstance(fmt, dict) and fmt.get("type") == "json_schema"

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools") or [] if t.get("type") == "function"]

    def mentions(self, marker: str) -> bool:
        return marker.lower() in self.system.lower() or marker.lower() in str(self.messages[:2]).lower()


Script = Callable[[Call], Reply]


def estimate_tokens(body: dict[str, Any]) -> int:
    """What the stand-in reports as prompt tokens: a fixed rule so tests can predict it."""
    return max(1, len(json.dumps(body.get("messages") or [])) // 4)


class StandinOpenAI:
    def __init__(self, script: Script | None = None) -> None:
        self.script: Script = script or (lambda call: Reply.text("ok"))
        self.calls: list[Call] = []
        self._usages: list[dict[str, int]] = []
        self._lock = threading.Lock()
        self._http = LoopbackServer(self._handler(), name="standin-openai")

    @property
    def base_url(self) -> str:
        return f"{self._http.base_url}/v1"

    def __enter__(self) -> StandinOpenAI:
        self._http.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.stop()

    @property
    def usage_sent(self) -> dict[str, int]:
        """Token usage the stand-in reported in its successful answers, summed."""
        with self._lock:
            usages = list(self._usages)
        return {
            "calls": len(usages),
            "prompt_tokens": sum(u["prompt_tokens"] for u in usages),
            "completion_tokens": sum(u["completion_tokens"] for u in usages),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return None

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}', {})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unparsable": raw.decode("utf-8", "replace")}
                with standin._lock:
                    call = Call(index=len(standin.calls), body=body, headers=dict(self.headers), arrived=arrived)
                    standin.calls.append(call)
                reply = standin.script(call)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload, usage = standin._payload(call, reply)
                if usage is not None:
                    with standin._lock:
                        standin._usages.append(usage)
                call.status = reply.status
                call.finished = time.monotonic()
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (timeout, deadline); that is what some tests provoke.
                    pass

        return Handler

    def _payload(self, call: Call, reply: Reply) -> tuple[bytes, dict[str, int] | None]:
        if reply.raw is not None:
            return reply.raw, None
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        finish = "stop"
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
            finish = "tool_calls"
        completion = len(reply.content or "") // 4 + sum(len(json.dumps(t)) // 4 for t in reply.tool_calls or [])
        usage = reply.usage or {"prompt_tokens": estimate_tokens(call.body), "completion_tokens": max(1, completion)}
        usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
        document = {
            "id": f"chatcmpl-standin-{call.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.body.get("model", "standin"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage,
        }
        return json.dumps(document).encode(), usage


def overlaps(a: Call, b: Call) -> bool:
    """Whether two requests were in flight at the same time."""
    return a.arrived < b.finished and b.arrived < a.finished
