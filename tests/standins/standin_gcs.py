"""gcp-storage-emulator on a loopback port, and a pager in front of it for what the emulator lacks.

The emulator is a real JSON API server for Cloud Storage but answers every listing
whole, ignoring `maxResults` and `pageToken`, and never refuses or throttles.
`GcsPager` forwards every request to it, cuts object listings into pages of
`maxResults` with an offset as `nextPageToken`, as Cloud Storage does, and answers the
requests its script names with Cloud Storage's JSON error shape instead.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from loopback import LoopbackServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GcsEmulator:
    """gcp-storage-emulator in memory on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        # The emulator logs each request at INFO.
        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = create_server("127.0.0.1", self.port, in_memory=True)

    def start(self) -> GcsEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url})


@dataclass
class Refusal:
    """Cloud Storage's JSON error for the next request whose kind ("list" or "get") matches."""

    kind: str
    status: int
    reason: str
    message: str


class GcsPager:
    """A loopback server forwarding to the emulator, paging listings; `listings` keeps each listing's query."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.script: list[Refusal] = []
        self.listings: list[dict[str, list[str]]] = []
        # Requests after the first `slow_after` wait `slow_s` before they are served.
        self.slow_after: int | None = None
        self.slow_s = 0.0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(_handler(self), name="gcs-pager")
        self.url = ""

    def start(self) -> GcsPager:
        self._server.start()
        self.url = self._server.base_url
        return self

    def stop(self) -> None:
        self._server.stop()

    def refusal(self, kind: str) -> Refusal | None:
        with self._lock:
            for index, refusal in enumerate(self.script):
                if refusal.kind == kind:
                    return self.script.pop(index)
        return None


def _handler(pager: GcsPager) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            listing = self.command == "GET" and parts.path.startswith("/storage/v1/b/") and parts.path.endswith("/o")
            with pager._lock:
                pager.paths.append(f"{self.command} {self.path}")
                slow = pager.slow_after is not None and len(pager.paths) > pager.slow_after
            if slow:
                time.sleep(pager.slow_s)
            refusal = pager.refusal("list" if listing else "get")
            if refusal is not None:
                error = {"error": {"code": refusal.status, "message": refusal.message, "errors": [{"reason": refusal.reason}]}}
                self._reply(refusal.status, json.dumps(error).encode(), {"Content-Type": "application/json"})
                return
            if not listing:
                status, body, headers = self._forward(self.path, payload)
                self._reply(status, body, headers)
                return
            query = parse_qs(parts.query)
            with pager._lock:
                pager.listings.append(dict(query))
            size = int(query.pop("maxResults", ["1000"])[0])
            offset = int(query.pop("pageToken", ["0"])[0])
            status, body, headers = self._forward(f"{parts.path}?{urlencode(query, doseq=True)}", payload)
            if status == 200:
                answer = json.loads(body)
                items = answer.get("items") or []
                answer["items"] = items[offset : offset + size]
                if offset + size < len(items):
                    answer["nextPageToken"] = str(offset + size)
                # Each item's mediaLink names the emulator: downloads come through here too, as they would to Cloud Storage.
                body = json.dumps(answer).replace(f"http://{pager.upstream.netloc}", pager.url).encode()
            self._reply(status, body, headers)

        def _forward(self, path: str, payload: bytes) -> tuple[int, bytes, dict[str, str]]:
            upstream = pager.upstream
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Host"] = upstream.netloc
            try:
                connection.request(self.command, path, body=payload or None, headers=headers)
                response = connection.getresponse()
                return response.status, response.read(), {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            finally:
                connection.close()

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _serve

    return Handler
