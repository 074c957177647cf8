"""A local Slack Web API: a real HTTP server on 127.0.0.1 that records every call and answers like Slack.

Point `SLACK_API_URL` at `standin.api_url`. Answers are scriptable per method
(`script("chat.postMessage", error("channel_not_found"))`, `rate_limited(1)`,
`server_error()`); unscripted calls get Slack-shaped successes.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlparse

from loopback import LoopbackServer

BOT_USER_ID = "U0BOT0001"
BOT_ID = "B0BOT0001"
TEAM_ID = "T0TEAM001"


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def error(code: str) -> Reply:
    return Reply(200, {"ok": False, "error": code})


def rate_limited(retry_after: int = 1) -> Reply:
    return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})


def server_error() -> Reply:
    return Reply(500, {"ok": False, "error": "internal_error"})


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int
    at: float


class SlackStandin:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self.user_groups: dict[str, list[str]] = {}
        self._http = LoopbackServer(self._handler(), name="slack-standin")

    # lifecycle ----------------------------------------------------------------

    def start(self) -> SlackStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def api_url(self) -> str:
        return f"{self._http.base_url}/api/"

    # scripting and inspection ---------------------------------------------------

    def script(self, method: str, *replies: Reply) -> None:
        """The next calls of `method` get these replies, in order; later calls the default."""
        with self._lock:
            self._scripts.setdefault(method, []).extend(replies)

    def of(self, method: str, **where: Any) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status == 200 and all(c.params.get(k) == v for k, v in where.items())]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s; calls so far: {[c.method for c in self.calls]}")

    # answers ----------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"17000{next(self._ts):05d}.000100"

    def _default(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if channel.startswith("#"):
            channel = "C" + channel[1:].upper().replace("-", "")[:10]
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://standin.slack.com/",
                "team": "Standin",
                "user": "incident-responder",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": params.get("text", ""), "ts": ts}
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            return {"ok": True, "channel": channel, "ts": params.get("ts"), "text": params.get("text", "")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.getPermalink":
            ts = str(params.get("message_ts", "")).replace(".", "")
            return {"ok": True, "channel": channel, "permalink": f"https://standin.slack.com/archives/{channel}/p{ts}"}
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": channel, "name": "incidents", "is_member": True}}
        if method == "users.info":
            return {"ok": True, "user": {"id": params.get("user"), "name": "someone", "real_name": "Some One"}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.user_groups.get(str(params.get("usergroup")), [])}
        if method == "apps.connections.open":
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": False, "error": "unknown_method"}

    def _answer(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            queue = self._scripts.get(method)
            scripted = queue.pop(0) if queue else None
        if scripted is not None:
            reply = scripted
        elif not headers.get("authorization", "").startswith("Bearer x"):
            reply = Reply(200, {"ok": False, "error": "not_authed"})
        else:
            reply = Reply(200, self._default(method, params))
        with self._lock:
            self.calls.append(Call(method, params, headers, reply.status, time.monotonic()))
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def _params(self) -> dict[str, Any]:
                parsed = urlparse(self.path)
                params: dict[str, Any] = dict(parse_qsl(parsed.query))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = self.headers.get("Content-Type", "")
                if raw and "json" in kind:
                    params.update(json.loads(raw))
                elif raw:
                    params.update(dict(parse_qsl(raw.decode())))
                for key in ("blocks", "attachments"):
                    if isinstance(params.get(key), str):
                        params[key] = json.loads(params[key])
                return params

            def _serve(self) -> None:
                method = urlparse(self.path).path.rsplit("/", 1)[-1]
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = standin._answer(method, self._params(), headers)
                payload = json.dumps(reply.body or {}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _serve
            do_GET = _serve

        return Handler
