"""A webhook receiver on loopback: records every POST (path, headers, body) and answers what a test scripts.

Stands in for a Standard Webhooks consumer (it verifies `webhook-signature` the way the
spec says a consumer must) and for a Teams Workflows webhook (which answers 202 with an
empty body, 400 for a malformed card, 429 with Retry-After when throttled).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Receiver:
    def __init__(self, *, ok_status: int = 200, secret: str | None = None, tolerance_s: int = 300) -> None:
        self.ok_status = ok_status
        self.secret = secret
        self.tolerance_s = tolerance_s
        self.received: list[Received] = []
        self.refused: list[str] = []
        self._script: list[Answer] = []
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def verified(self, got: Received) -> bool:
        """What a Standard Webhooks consumer checks: the signature over id.timestamp.body, and a fresh timestamp."""
        if self.secret is None:
            return True
        message_id, stamp, signatures = (
            got.headers.get("webhook-id", ""),
            got.headers.get("webhook-timestamp", ""),
            got.headers.get("webhook-signature", ""),
        )
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > self.tolerance_s:
            return False
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, f"{message_id}.{stamp}.".encode() + got.body, hashlib.sha256).digest()).decode()
        return any(hmac.compare_digest(part.removeprefix("v1,"), expected) for part in signatures.split() if part.startswith("v1,"))

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def do_HEAD(self) -> None:
                self.send_response(405)
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    answer = receiver._script.pop(0) if receiver._script else None
                if answer is not None and answer.delay_s:
                    time.sleep(answer.delay_s)
                status = answer.status if answer is not None else receiver.ok_status
                if status < 300 and not receiver.verified(got):
                    receiver.refused.append(got.headers.get("webhook-id", ""))
                    status = 401
                elif status < 300:
                    receiver.received.append(got)
                self.send_response(status)
                for key, value in (answer.headers if answer is not None else {}).items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = LoopbackServer(Handler, name="standin-receiver")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.base_url
