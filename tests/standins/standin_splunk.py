"""A local Splunk management API: login, server info and the search export, with the real shapes.

splunk-sdk first asks `GET /services/server/info` (an Atom feed) for the version, and
for 9.0.2 and later exports through `POST /services/search/v2/jobs/export`, before that
through `/services/search/jobs/export`; both are served, `version` decides which is used.

The login answers XML `<response><sessionKey>...</sessionKey></response>` (401 with
`<messages><msg type="WARN">Login failed</msg>`). The export (form fields `search`,
`earliest_time`, `latest_time` in epoch seconds, `output_mode=json`) streams one JSON
document a line as the search runs: `{"preview": false, "offset": n, "result": {"_raw",
"_time", "_bkt", "_cd", "_indextime", "_serial", "_si", "_sourcetype", "host", "index",
"linecount", "source", "sourcetype", "splunk_server", fields...}}`, the last with
`"lastrow": true`. Events come newest first unless the search ends with `| reverse`, as in
Splunk. Errors are `{"messages": [{"type": "FATAL"|"ERROR"|"WARN", "text"}]}`: 400 for a
search that does not parse, 401 for a bad token or session, 503 when the search
concurrency limit is reached, 429 with `Retry-After` from a rate-limiting front.

The search language understood is a small part of SPL: `key=value` terms and free
words, ANDed, with an optional `| reverse`.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from loopback import LoopbackServer


@dataclass
class SplunkEvent:
    at: datetime
    raw: str
    host: str = "web-1"
    source: str = "/var/log/checkout/app.log"
    sourcetype: str = "checkout:json"
    index: str = "main"
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Export:
    form: dict[str, str]
    authorization: str


@dataclass
class SplunkStandin:
    token: str = "splunk-token-standin-0123456789"
    username: str = "incident-reader"
    password: str = "standin-password-0123456789"
    events: list[SplunkEvent] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    logins: int = 0
    version: str = "9.3.2"
    # Seconds between streamed results from the `slow_after`-th result on (a search still running).
    delay_s: float = 0.0
    slow_after: int = 0
    # After the matching events, filler results without end: more than a test could read.
    endless: bool = False
    # Messages streamed before the results (`{"messages": [{"type": "WARN", "text"}]}`), as for a search over a missing index.
    warnings: list[str] = field(default_factory=list)
    # A preview of the first result streamed before the results, as a reporting search still running sends one.
    preview: bool = False
    _failures: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _sessions: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="splunk-standin")

    def start(self) -> SplunkStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def port(self) -> int:
        return int(self._http.base_url.rsplit(":", 1)[1])

    def busy(self, times: int = 1) -> None:
        text = (
            "Search not executed: The maximum number of concurrent historical searches on this instance has been reached., "
            'concurrency_category="historical", concurrency_context="instance-wide", current_concurrency=10, concurrency_limit=10'
        )
        self._failures.extend([(503, {}, {"messages": [{"type": "ERROR", "text": text}]})] * times)

    def rate_limit(self, times: int = 1, retry_after_s: int = 1) -> None:
        answer = {"messages": [{"type": "ERROR", "text": "Too many requests"}]}
        self._failures.extend([(429, {"Retry-After": str(retry_after_s)}, answer)] * times)

    def _authorized(self, header: str) -> bool:
        scheme, _, credential = header.partition(" ")
        return (scheme == "Bearer" and credential == self.token) or (scheme == "Splunk" and credential in self._sessions)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return None

            def _answer(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._answer(status, json.dumps(body).encode(), "application/json; charset=UTF-8", headers)

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/services/server/info":
                    self._json(404, {"messages": [{"type": "ERROR", "text": f"Not Found: {self.path}"}]})
                elif not standin._authorized(self.headers.get("Authorization", "")):
                    self._answer(401, _UNAUTHORIZED_XML.encode(), "text/xml; charset=UTF-8")
                else:
                    self._answer(200, _SERVER_INFO.format(version=standin.version).encode(), "text/xml; charset=UTF-8")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path.split("?")[0] == "/services/auth/login":
                    self._login(form)
                elif self.path.split("?")[0] in ("/services/search/jobs/export", "/services/search/v2/jobs/export"):
                    self._export(form)
                else:
                    self._json(404, {"messages": [{"type": "ERROR", "text": f"Not Found: {self.path}"}]})

            def _login(self, form: dict[str, str]) -> None:
                with standin._lock:
                    standin.logins += 1
                if (form.get("username"), form.get("password")) != (standin.username, standin.password):
                    body = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <messages>\n'
                        '    <msg type="WARN" code="incorrect_username_or_password">Login failed</msg>\n  </messages>\n</response>\n'
                    )
                    self._answer(401, body.encode(), "text/xml; charset=UTF-8")
                    return
                key = uuid.uuid4().hex
                standin._sessions.add(key)
                body = f'<response>\n  <sessionKey>{key}</sessionKey>\n  <messages>\n    <msg code=""></msg>\n  </messages>\n</response>\n'
                self._answer(200, body.encode(), "text/xml; charset=UTF-8")

            def _export(self, form: dict[str, str]) -> None:
                with standin._lock:
                    standin.exports.append(Export(form, self.headers.get("Authorization", "")))
                    failure = standin._failures.pop(0) if standin._failures else None
                if failure is not None:
                    self._json(failure[0], failure[2], failure[1])
                    return
                if not standin._authorized(self.headers.get("Authorization", "")):
                    self._json(401, {"messages": [{"type": "WARN", "text": "call not properly authenticated"}]})
                    return
                search = form.get("search", "")
                try:
                    terms, ascending = _parse(search)
                    start, end = float(form["earliest_time"]), float(form["latest_time"])
                except (ValueError, KeyError) as exc:
                    text = f"Error in 'search' command: Unable to parse the search: {exc}"
                    self._json(400, {"messages": [{"type": "FATAL", "text": text}]})
                    return
                chosen = [e for e in standin.events if start <= e.at.timestamp() < end and _matches(e, terms)]
                chosen.sort(key=lambda e: e.at, reverse=not ascending)
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.end_headers()
                try:
                    self._stream(chosen, end)
                except (BrokenPipeError, ConnectionResetError):
                    # The client stopped reading: it had what it needed, or its deadline passed.
                    return

            def _stream(self, chosen: list[SplunkEvent], end: float) -> None:
                for text in standin.warnings:
                    self.wfile.write(json.dumps({"preview": False, "messages": [{"type": "WARN", "text": text}]}).encode() + b"\n")
                if standin.preview and chosen:
                    self.wfile.write(json.dumps({"preview": True, "offset": 0, "result": _result(chosen[0], 0)}).encode() + b"\n")
                offset = 0
                while offset < len(chosen) or standin.endless:
                    if offset < len(chosen):
                        event = chosen[offset]
                    else:
                        event = SplunkEvent(datetime.fromtimestamp(end - 0.001, UTC), f"filler {offset}")
                    if standin.delay_s and offset >= standin.slow_after:
                        time.sleep(standin.delay_s)
                    last = offset == len(chosen) - 1 and not standin.endless
                    line = {"preview": False, "offset": offset, **({"lastrow": True} if last else {}), "result": _result(event, offset)}
                    self.wfile.write(json.dumps(line).encode() + b"\n")
                    self.wfile.flush()
                    offset += 1

        return Handler


_UNAUTHORIZED_XML = """<?xml version="1.0" encoding="UTF-8"?>
<response>
  <messages>
    <msg type="WARN">call not properly authenticated</msg>
  </messages>
</response>
"""
_SERVER_INFO = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">
  <title>server-info</title>
  <id>https://127.0.0.1:8089/services/server/info</id>
  <updated>2026-03-10T12:00:00+00:00</updated>
  <generator build="48f4f251be37" version="{version}"/>
  <author><name>Splunk</name></author>
  <opensearch:totalResults>1</opensearch:totalResults>
  <opensearch:itemsPerPage>30</opensearch:itemsPerPage>
  <opensearch:startIndex>0</opensearch:startIndex>
  <s:messages/>
  <entry>
    <title>server-info</title>
    <id>https://127.0.0.1:8089/services/server/info/server-info</id>
    <updated>2026-03-10T12:00:00+00:00</updated>
    <link href="/services/server/info/server-info" rel="alternate"/>
    <author><name>system</name></author>
    <link href="/services/server/info/server-info" rel="list"/>
    <content type="text/xml">
      <s:dict>
        <s:key name="build">48f4f251be37</s:key>
        <s:key name="product_type">enterprise</s:key>
        <s:key name="serverName">idx-1</s:key>
        <s:key name="version">{version}</s:key>
      </s:dict>
    </content>
  </entry>
</feed>
"""


def _parse(search: str) -> tuple[list[str], bool]:
    pipeline = [part.strip() for part in search.split("|")]
    head, commands = pipeline[0], pipeline[1:]
    if not head.startswith("search "):
        raise ValueError(f"unknown search command '{head.split(' ')[0]}'")
    if any(command != "reverse" for command in commands):
        raise ValueError(f"unknown command in {commands}")
    return shlex.split(head.removeprefix("search ")), commands == ["reverse"]


def _matches(event: SplunkEvent, terms: list[str]) -> bool:
    fields = {"host": event.host, "source": event.source, "sourcetype": event.sourcetype, "index": event.index, **event.fields}
    for term in terms:
        key, sep, value = term.partition("=")
        if sep and str(fields.get(key)) != value:
            return False
        if not sep and term != "*" and term.lower() not in event.raw.lower():
            return False
    return True


def _result(event: SplunkEvent, serial: int) -> dict[str, Any]:
    return {
        "_bkt": f"{event.index}~42~6B5E3C3A-8F0B-4C7E-9E55-0D7B1F1E2A11",
        "_cd": f"42:{serial}",
        "_indextime": str(int(event.at.timestamp()) + 2),
        "_raw": event.raw,
        "_serial": str(serial),
        "_si": ["idx-1", event.index],
        "_sourcetype": event.sourcetype,
        "_time": event.at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00",
        "host": event.host,
        "index": event.index,
        "linecount": str(event.raw.count("\n") + 1),
        "source": event.source,
        "sourcetype": event.sourcetype,
        "splunk_server": "idx-1",
        **{k: v if isinstance(v, str | list) else str(v) for k, v in event.fields.items()},
    }
