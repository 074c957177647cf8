"""Redis stopped during a run: the web keeps answering (an API start is accepted as recorded but not queued, Slack and
PagerDuty are told, the rows wait for the sweep), workers reconnect, and everything recorded meanwhile runs once Redis
is back. The test runs a Redis of its own.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import EXAMPLE_AT, Stack, free_port, pagerduty_delivery, slack_surface, until
from redis import Redis
from standin_slack import SlackStandin

from core.models import Status
from core.store import Store

CHANNEL = "C0INCIDENT"


class OwnRedis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        until(lambda: self._ping(), timeout=10, what="redis-server answering")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def _ping(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except Exception:
            return False


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_restart_keeps_web_answering_and_runs_what_was_recorded_meanwhile(
    stack: Stack, own_redis: OwnRedis, slack: SlackStandin, db: Store, api_key: str
) -> None:
    stack.env["REDIS_URL"] = own_redis.url
    web = stack.web()
    worker = stack.worker()
    api = web.client(api_key)
    assert api.get("/readyz").status_code == 200

    own_redis.stop()

    assert api.get("/healthz").status_code == 200
    ready = api.get("/readyz")
    assert ready.status_code == 503 and ready.json()["error"]["details"]["redis"] == "unreachable"
    start = {"service": "checkout", "alert_text": "5xx on /pay", "at": EXAMPLE_AT}
    created = api.post("/api/v1/investigations", json=start, headers={"Idempotency-Key": "outage-1"})
    # Accepted, not refused: a 503 would invite the client to retry and record the incident twice.
    assert created.status_code == 202, created.text
    assert created.json()["queued"] is False and "when the queue is back" in created.json()["message"]
    assert db.require(created.json()["id"]).status == Status.queued.value
    retried = api.post("/api/v1/investigations", json=start, headers={"Idempotency-Key": "outage-1"})
    assert retried.status_code == 202 and retried.json()["id"] == created.json()["id"] and retried.json()["queued"] is False
    assert api.get("/api/v1/investigations").status_code == 200
    command = {
        "command": "/investigate",
        "text": f"checkout 5xx --at {EXAMPLE_AT}",
        "user_id": "U0ONCALL1",
        "channel_id": CHANNEL,
        "trigger_id": "2222.3333.redis",
    }
    acked = slack_surface(web).command(command)
    assert acked.status_code == 200 and "Queued" in acked.text
    body, headers = pagerduty_delivery("PREDIS01")
    webhook = web.client().post("/webhooks/pagerduty", content=body, headers=headers)
    assert webhook.status_code == 202 and "queue unavailable" in webhook.json()["reason"]
    slack.wait_for(lambda: [c for c in slack.of("chat.postMessage") if "job queue is not answering" in c.params.get("text", "")])
    waiting, _ = db.list_investigations()
    assert len(waiting) == 3 and {r.status for r in waiting} == {Status.queued.value}

    own_redis.start()

    def all_finished() -> bool:
        rows, _ = db.list_investigations()
        return all(Status(r.status).finished for r in rows)

    until(all_finished, timeout=90, every=0.5, what="every investigation recorded during the outage finishing")
    rows, _ = db.list_investigations()
    assert len(rows) == 3 and created.json()["id"] in {r.id for r in rows}
    assert {r.status for r in rows} <= {Status.done.value, Status.degraded.value}, [(r.id, r.status, r.error) for r in rows]
    assert worker.alive(), "the worker reconnected instead of exiting"
    replayed = api.post("/api/v1/investigations", json=start, headers={"Idempotency-Key": "outage-1"}).json()
    assert replayed["id"] == created.json()["id"] and replayed["queued"] is True and replayed["status"] != Status.queued.value
    assert api.get("/readyz").status_code == 200
    assert "sweep" in worker.text()
