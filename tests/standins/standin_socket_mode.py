"""A local Slack Socket Mode endpoint: a WebSocket server on 127.0.0.1 that speaks Slack's protocol.

`SlackStandin.attach_socket_mode(standin)` makes `apps.connections.open` (app token `xapp-...`)
answer with a `ws://` URL of this server. Each connection gets `hello`; the test sends
`events_api`, `slash_commands` and `interactive` envelopes with `deliver(...)` and reads the
client's acks by `envelope_id` with `ack_for(...)`; `disconnect()` asks the client to
reconnect (as Slack does about every few hours and on deploys); `retry_attempt` and
`retry_reason` mark a redelivery as Slack does when an envelope was not acked in time.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

APP_ID = "A0IRAPP01"


class SocketModeStandin:
    def __init__(self) -> None:
        self._tickets: set[str] = set()
        self._lock = threading.Condition()
        self._connections: list[ServerConnection] = []
        self.hellos = 0
        self.refused = 0
        self.acks: dict[str, list[dict[str, Any]]] = {}
        self.received: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------

    def start(self) -> SocketModeStandin:
        self._server = serve(self._serve, "127.0.0.1", 0, ping_interval=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="socket-mode-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.socket.getsockname()[1])

    def new_url(self) -> str:
        """What apps.connections.open hands out: a single-use ticket on a ws:// URL."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={APP_ID}"

    # the server side ---------------------------------------------------------------

    def _serve(self, connection: ServerConnection) -> None:
        ticket = (parse_qs(urlparse(connection.request.path if connection.request else "").query).get("ticket") or [""])[0]
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            with self._lock:
                self.refused += 1
            connection.close(code=1008, reason="invalid ticket")
            return
        with self._lock:
            self._connections.append(connection)
            self.hellos += 1
            number = len(self._connections)
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": number,
                    "debug_info": {"host": "applink-standin", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        try:
            for raw in connection:
                message = json.loads(raw)
                with self._lock:
                    self.received.append(message)
                    if "envelope_id" in message:
                        self.acks.setdefault(str(message["envelope_id"]), []).append(message)
                    self._lock.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._lock.notify_all()

    # what tests do -------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def wait_connected(self, hellos: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.hellos < hellos or not self._connections:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no Socket Mode connection ({self.hellos} hellos so far)")
                self._lock.wait(remaining)

    def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> str:
        """Send one envelope on the newest connection; returns its envelope_id."""
        envelope_id = envelope_id or f"{next(self._ids):08d}-{uuid.uuid4().hex[:8]}-4b7c-9b9a-standin"
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind, "payload": payload}
        if kind == "events_api":
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason}
        envelope["accepts_response_payload"] = kind != "events_api" if accepts_response_payload is None else accepts_response_payload
        with self._lock:
            connection = self._connections[-1] if self._connections else None
        if connection is None:
            raise AssertionError("no open Socket Mode connection to deliver on")
        connection.send(json.dumps(envelope))
        return envelope_id

    def ack_for(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The client's ack of an envelope (Slack wants it within 3 s)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while envelope_id not in self.acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"envelope {envelope_id} was not acked within {timeout}s")
                self._lock.wait(remaining)
            return self.acks[envelope_id][0]

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's `disconnect` message: the client opens a new connection, then drops this one."""
        with self._lock:
            connection = self._connections[-1] if self._connections else None
        if connection is not None:
            connection.send(json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}))
