"""moto in server mode on a loopback port, and a stand-in in front of it for the answers moto never gives.

`MotoServer` is the real emulator (moto's `ThreadedMotoServer`) that the AWS kinds are
tested against. moto cannot throttle, refuse credentials, answer slowly or report a
Logs Insights query as still running, so `AwsFront` forwards every request to moto
except those its script answers: AWS's own error shapes (a JSON `__type` for CloudWatch
Logs, an XML `<Error>` for S3), a delay, or a canned body. The client under test talks
to the front as it would to AWS and is never patched.

CloudWatch Logs accepts no event older than 14 days (moto checks too), while the
tests' windows lie in the past: `seed_events` adds events to a log stream through moto's
in-process backend, as if they had been written when they say.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from loopback import LoopbackServer

REGION = "us-east-1"
ACCOUNT = "123456789012"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def use_loopback_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, region: str = "us-east-1") -> None:
    """Dummy credentials and none of the machine's AWS config or profile: every call goes to loopback."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class MotoServer:
    """moto's threaded server on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> MotoServer:
        # moto's server logs every request through werkzeug: thousands of lines in a bundle test.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()


def seed_events(group: str, stream: str, events: Iterable[tuple[int, str]]) -> None:
    """(milliseconds, message) pairs into a log stream of moto's backend, creating the group and the stream if needed."""
    from moto.logs.models import logs_backends

    backend = logs_backends[ACCOUNT][REGION]
    if group not in backend.groups:
        backend.create_log_group(group, {})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    backend.groups[group].put_log_events(stream, [{"timestamp": ms, "message": message} for ms, message in events])


@dataclass
class Answer:
    """One scripted answer: to the next request whose operation starts with `operation` ("" for any)."""

    operation: str = ""
    status: int = 200
    body: bytes = b""
    content_type: str = "application/x-amz-json-1.1"
    delay_s: float = 0.0
    # With `forward`, the request still goes to moto after the delay: a slow but true answer.
    forward: bool = False


def throttled() -> Answer:
    """CloudWatch Logs' answer to a caller over its rate: 400 with a ThrottlingException."""
    return json_error(400, "ThrottlingException", "Rate exceeded")


def json_error(status: int, code: str, message: str, operation: str = "") -> Answer:
    """An error as CloudWatch Logs (AWS JSON 1.1 protocol) writes it."""
    return Answer(operation, status, json.dumps({"__type": code, "message": message}).encode())


def xml_error(status: int, code: str, message: str, operation: str = "") -> Answer:
    """An error as S3 (REST-XML) writes it."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>R1</RequestId></Error>'
    )
    return Answer(operation, status, body.encode(), content_type="application/xml")


def insights_status(status: str, rows: list[list[dict[str, str]]] | None = None) -> Answer:
    """A GetQueryResults answer with the given status."""
    body = {"status": status, "results": rows or [], "statistics": {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}}
    return Answer("GetQueryResults", 200, json.dumps(body).encode())


@dataclass
class Seen:
    operation: str
    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)


class AwsFront:
    """A loopback server forwarding to `upstream` except for what `script` answers; every request kept in `seen`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.script: list[Answer] = []
        self.seen: list[Seen] = []
        # Requests after the first `slow_after` wait `slow_s` before being forwarded.
        self.slow_after: int | None = None
        self.slow_s = 0.0
        self._lock = threading.Lock()
        self._server = LoopbackServer(_handler(self), name="aws-front")
        self.url = ""

    def start(self) -> AwsFront:
        self._server.start()
        self.url = self._server.base_url
        return self

    def stop(self) -> None:
        self._server.stop()

    def calls(self, operation: str) -> list[Seen]:
        return [s for s in self.seen if s.operation == operation]

    def take(self, operation: str) -> tuple[Answer | None, float]:
        with self._lock:
            delay = self.slow_s if self.slow_after is not None and len(self.seen) > self.slow_after else 0.0
            for index, answer in enumerate(self.script):
                if operation.startswith(answer.operation):
                    return self.script.pop(index), delay
        return None, delay


def _operation(handler: BaseHTTPRequestHandler) -> str:
    target = handler.headers.get("X-Amz-Target", "")
    if target:
        return target.rpartition(".")[2]
    # S3: the method and the query name the operation closely enough for a script.
    query = urlsplit(handler.path).query
    if handler.command == "GET" and "list-type=2" in query:
        return "ListObjectsV2"
    return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject"}.get(handler.command, handler.command)


def _handler(front: AwsFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            operation = _operation(self)
            try:
                body = json.loads(payload) if payload and self.headers.get("X-Amz-Target") else {}
            except ValueError:
                body = {}
            with front._lock:
                front.seen.append(Seen(operation, self.command, self.path, body))
            answer, delay = front.take(operation)
            if answer is not None and answer.delay_s:
                delay = max(delay, answer.delay_s)
            if delay:
                time.sleep(delay)
            if answer is not None and not answer.forward:
                self._reply(answer.status, answer.body, {"Content-Type": answer.content_type})
                return
            self._forward(payload)

        def _forward(self, payload: bytes) -> None:
            upstream = front.upstream
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Host"] = upstream.netloc
            try:
                connection.request(self.command, self.path, body=payload or None, headers=headers)
                response = connection.getresponse()
                body = response.read()
                kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            finally:
                connection.close()
            self._reply(response.status, body, kept)

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve

    return Handler
