"""A local Jira REST v2: the endpoints the `jira` library calls to log in, search and create issues.

Issues live in memory; `fail_creates(status, times)` and `create_delay_s` script
failures and slow answers so tests can reach the retry and race paths.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer

_LABEL = re.compile(r'labels\s*=\s*"?([\w.-]+)"?')


@dataclass
class Request:
    method: str
    path: str
    body: Any


@dataclass
class JiraStandin:
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    create_delay_s: float = 0.0
    _failures: list[tuple[int, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name="jira-standin")

    def start(self) -> JiraStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    def fail_creates(self, status: int, times: int = 1, message: str = "Internal error") -> None:
        self._failures.extend([(status, message)] * times)

    def created(self) -> list[dict[str, Any]]:
        return list(self.issues.values())

    def _issue_json(self, issue: dict[str, Any]) -> dict[str, Any]:
        return {"id": issue["id"], "key": issue["key"], "self": f"{self.url}/rest/api/2/issue/{issue['id']}", "fields": issue["fields"]}

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(Request(method, path, body))
        if path == "/rest/api/2/serverInfo":
            return 200, {
                "baseUrl": self.url,
                "version": "9.12.0",
                "versionNumbers": [9, 12, 0],
                "deploymentType": "Server",
                "buildNumber": 9120000,
                "serverTitle": "Jira stand-in",
            }
        if path == "/rest/api/2/field":
            return 200, [{"id": "summary", "name": "Summary", "custom": False}, {"id": "labels", "name": "Labels", "custom": False}]
        if path == "/rest/api/2/myself":
            return 200, {"name": "bot", "displayName": "Bot"}
        if path == "/rest/api/2/search" and method == "GET":
            jql = (query.get("jql") or [""])[0]
            label = _LABEL.search(jql)
            with self._lock:
                found = [self._issue_json(i) for i in self.issues.values() if label and label.group(1) in i["fields"].get("labels", [])]
            return 200, {"startAt": 0, "maxResults": 50, "total": len(found), "issues": found}
        if path == "/rest/api/2/issue" and method == "POST":
            if self.create_delay_s:
                time.sleep(self.create_delay_s)
            with self._lock:
                if self._failures:
                    status, message = self._failures.pop(0)
                    return status, {"errorMessages": [message], "errors": {}}
                number = next(self._ids)
                key = f"{body['fields']['project']['key']}-{number}"
                self.issues[key] = {"id": str(10000 + number), "key": key, "fields": body["fields"]}
                return 201, {"id": str(10000 + number), "key": key, "self": f"{self.url}/rest/api/2/issue/{10000 + number}"}
        if path.startswith("/rest/api/2/issue/") and method == "GET":
            key = path.rsplit("/", 1)[-1]
            with self._lock:
                issue = self.issues.get(key) or next((i for i in self.issues.values() if i["id"] == key), None)
            return (200, self._issue_json(issue)) if issue else (404, {"errorMessages": ["Issue does not exist"], "errors": {}})
        return 404, {"errorMessages": [f"stand-in has no {method} {path}"], "errors": {}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def _serve(self) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, payload = standin.answer(self.command, parsed.path, parse_qs(parsed.query), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve
            do_PUT = _serve

        return Handler
