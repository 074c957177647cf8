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

from blockkit import problems
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
        self.views: dict[str, dict[str, Any]] = {}
        self._used_triggers: set[str] = set()
        self._view_ids = itertools.count(1)
        self.socket_mode: Any = None
        # Called with (method, params) as a call arrives, before it is answered: a test may hold a call here.
        self.on_call: Callable[[str, dict[str, Any]], None] | None = None
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

    def attach_socket_mode(self, socket_mode: Any) -> None:
        """apps.connections.open (with an app-level token) hands out this stand-in's ws:// URLs."""
        self.socket_mode = socket_mode

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
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            return self._view(method, params)
        if method == "apps.connections.open":
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": False, "error": "unknown_method"}

    def _view(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """views.*: trigger ids are single-use, the view must pass Block Kit's limits, Home views go to a user."""
        view = params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": ["[ERROR] missing required field: view"]}}
        if method in ("views.open", "views.push"):
            trigger = str(params.get("trigger_id") or "")
            if not trigger:
                return {"ok": False, "error": "invalid_trigger_id"}
            with self._lock:
                if trigger in self._used_triggers:
                    return {"ok": False, "error": "exchanged_trigger_id"}
                self._used_triggers.add(trigger)
        if method == "views.publish":
            if not params.get("user_id"):
                return {
                    "ok": False,
                    "error": "invalid_arguments",
                    "response_metadata": {"messages": ["[ERROR] missing required field: user_id"]},
                }
            if view.get("type") != "home":
                return {
                    "ok": False,
                    "error": "invalid_arguments",
                    "response_metadata": {"messages": ["[ERROR] must be a home view [/type]"]},
                }
        found = problems(view)
        if found:
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": [f"[ERROR] {p}" for p in found]}}
        view_id = str(params.get("view_id") or f"V0VIEW{next(self._view_ids):04d}")
        stored = {**view, "id": view_id, "team_id": TEAM_ID, "state": {"values": {}}, "hash": f"{time.time():.6f}"}
        with self._lock:
            self.views[view_id] = stored
        return {"ok": True, "view": stored}

    def _answer(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        if self.on_call is not None:
            self.on_call(method, params)
        with self._lock:
            queue = self._scripts.get(method)
            scripted = queue.pop(0) if queue else None
        if scripted is not None:
            reply = scripted
        elif not headers.get("authorization", "").startswith("Bearer x"):
            reply = Reply(200, {"ok": False, "error": "not_authed"})
        elif method == "apps.connections.open" and self.socket_mode is not None:
            if headers.get("authorization", "").startswith("Bearer xapp-"):
                reply = Reply(200, {"ok": True, "url": self.socket_mode.new_url()})
            else:
                reply = Reply(200, {"ok": False, "error": "not_allowed_token_type"})
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
                for key in ("blocks", "attachments", "view"):
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
