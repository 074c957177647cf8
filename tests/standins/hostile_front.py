"""A loopback HTTP front that forwards to a stand-in and misbehaves as a store under trouble does.

Modes, set per test: `slow_s` (every answer waits), `reset` (the connection is closed
without an answer), `storm` (every answer is this status, e.g. 429 or 503), `truncate`
(a 200's JSON body cut in half), `loop` (every page after the first is the first page
again, its cursor included), `claim` (a numeric field set to a huge value: "billions of
results"). The client under test is pointed at the front and never patched.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from loopback import LoopbackServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "content-encoding"}


@dataclass
class HostileFront:
    upstream: str
    slow_s: float = 0.0
    reset: bool = False
    storm: int | None = None
    truncate: bool = False
    loop: bool = False
    claim: tuple[str, int] | None = None
    requests: int = 0
    # Requests received and not answered yet: a test can act while the client is waiting on one.
    in_flight: int = 0
    _first_page: tuple[int, dict[str, str], bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> HostileFront:
        self._server = LoopbackServer(self._handler(), name="hostile-front")
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.base_url

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers={k: v for k, v in headers.items() if k.lower() not in _HOP})
            answer = connection.getresponse()
            return answer.status, {k: v for k, v in answer.getheaders() if k.lower() not in _HOP}, answer.read()
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with front._lock:
                    front.requests += 1
                    front.in_flight += 1
                    count = front.requests
                try:
                    self._misbehave(body, count)
                finally:
                    with front._lock:
                        front.in_flight -= 1

            def _misbehave(self, body: bytes, count: int) -> None:
                if front.slow_s:
                    time.sleep(front.slow_s)
                if front.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    return
                if front.storm is not None:
                    self._reply(front.storm, {"content-type": "application/json", "retry-after": "1"}, b'{"error": "storm"}')
                    return
                status, headers, payload = front._forward(self.command, self.path, dict(self.headers.items()), body)
                if front.loop and status == 200:
                    with front._lock:
                        if front._first_page is None or count <= 1:
                            front._first_page = (status, headers, payload)
                        status, headers, payload = front._first_page
                if front.claim is not None and status == 200 and payload.startswith(b"{"):
                    payload = _claimed(payload, *front.claim)
                if front.truncate and status == 200:
                    payload = payload[: len(payload) // 2]
                self._reply(status, headers, payload)

            def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                # A client killed or gone while the front held its answer has closed the connection: nobody to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler


def _claimed(payload: bytes, dotted: str, value: int) -> bytes:
    document = json.loads(payload)
    node = document
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return json.dumps(document).encode()
