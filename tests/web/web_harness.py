"""Helpers for the web tests: a real uvicorn subprocess, API keys, hand-made investigations with reports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from rq import Queue

from core.models import Investigation, Source, Status
from core.store import Store
from tests.standins.loopback import free_port
from web.sample_report import SAMPLE_REPORT

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ARTIFACTS = REPO / "tests" / "artifacts"


@dataclass
class Server:
    url: str
    queue_name: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)


def start_server(tmp: Path, database_url: str, **overrides: str) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    queue_name = overrides.pop("QUEUE_NAME", f"test-web-{uuid.uuid4().hex[:8]}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "JIRA_", "PAGERDUTY_", "SERVICES_"))},
        "APP_ENV": "test",
        "DATA_DIR": str(tmp / "var"),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": queue_name,
        "PUBLIC_URL": url,
        "SESSION_SECRET": "test-session-secret",
        "API_RATE_LIMIT_PER_KEY": "100000/minute",
        "API_RATE_LIMIT_PER_IP": "100000/minute",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        **overrides,
    }
    log = tmp / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "web.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"web server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(url=url, queue_name=queue_name, process=process, log=log, env=env)
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"web server did not come up:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    redis = Redis.from_url(REDIS_URL)
    Queue(server.queue_name, connection=redis).empty()
    for key in redis.scan_iter(f"ir:*{server.queue_name}*"):
        redis.delete(key)
    redis.close()


@dataclass(frozen=True)
class Keys:
    read: str
    write: str
    admin: str


def report_for(investigation_id: str, **root_cause: Any) -> dict[str, Any]:
    report = SAMPLE_REPORT.to_json_dict()
    report["investigation_id"] = investigation_id
    report["root_cause"] = {**report["root_cause"], **root_cause}
    return report


def make_investigation(
    store: Store,
    *,
    service: str = "checkout",
    title: str = "checkout: p99 latency above 2 s",
    status: Status = Status.done,
    created_at: datetime | None = None,
    with_report: bool = True,
) -> Investigation:
    now = datetime.now(UTC)
    row = store.create_investigation(
        Investigation(
            source=Source.api.value,
            service=service,
            title=title,
            alert={"title": title, "service": service, "created_at": now.isoformat(), "source": "api"},
            window_start=now - timedelta(hours=1),
            window_end=now,
            at=now,
            created_at=created_at or now,
        )
    )
    if with_report and status.finished:
        store.save_report(row.id, report_for(row.id), status)
    elif status is not Status.queued:
        store.set_status(row.id, status)
    return store.require(row.id)
