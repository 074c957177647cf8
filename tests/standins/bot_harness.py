"""Helpers the bot tests share: signed Slack requests, the web server handle, an in-process RQ worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from redis import Redis
from rq import Queue, SimpleWorker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slack"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
PD_WEBHOOK_SECRET = "pd-webhook-secret-current"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def slack_headers(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class WebServer:
    url: str
    http: httpx.Client

    def command(self, fields: dict[str, str], **headers: str) -> httpx.Response:
        body = urlencode(fields).encode()
        return self.http.post(
            "/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded", **slack_headers(body), **headers}
        )

    def event(self, envelope: dict[str, Any], *, retry_num: int | None = None) -> httpx.Response:
        body = json.dumps(envelope).encode()
        extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else {}
        return self.http.post("/slack/events", content=body, headers={"Content-Type": "application/json", **slack_headers(body), **extra})

    def action(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.http.post(
            "/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded", **slack_headers(body)}
        )


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until `condition()` is truthy and return it (listeners act after their ack, a moment later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


class DrainWorker(SimpleWorker):
    """A burst worker without RQ's pub/sub listener thread.

    That channel only carries remote commands (stop, kill a job), which a test drain never gets;
    tearing its thread down after every burst sometimes blocked for most of a minute (rq 3, redis-py 8).
    """

    def subscribe(self) -> None:
        return None

    def unsubscribe(self) -> None:
        return None


@dataclass
class Worker:
    redis: Redis
    queue_name: str

    def drain(self) -> None:
        """Run every queued job now, in this process (progress reaches Slack through the registered poster)."""
        DrainWorker([Queue(self.queue_name, connection=self.redis)], connection=self.redis).work(burst=True, logging_level="WARNING")

    def run_starts(self, timeout: float = 10.0) -> int:
        """Run the queued starts of commands (root post, record) here, leaving the runs they queue waiting; how many ran.

        Listeners queue a start a moment after their ack, so this waits (up to `timeout`) for at least one.
        """
        from bot.command_investigate import START_QUEUED

        queue = Queue(self.queue_name, connection=self.redis)
        deadline = time.monotonic() + timeout
        ran = 0
        while not ran and time.monotonic() < deadline:
            for job in queue.jobs:
                if job.func_name == START_QUEUED:
                    queue.remove(job)
                    job.perform()
                    ran += 1
            time.sleep(0.05)
        return ran

    def until(self, condition: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Drain repeatedly until `condition()` is truthy (listeners enqueue after their ack, a moment later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            result = condition()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"condition not met within {timeout}s")
