"""The system under load: a fresh PostgreSQL database, a private queue on the local Redis, a Slack stand-in, and
`python app.py serve --workers N` (plus a worker for the storm) as real processes on loopback.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import psutil
from redis import Redis
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests" / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from standin_slack import SlackStandin  # noqa: E402

from core.store import Store  # noqa: E402
from web.auth import create_api_key  # noqa: E402

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
EXAMPLE = REPO / "examples" / "checkout-discount-crash"
SIGNING_SECRET = "load-signing-secret-0123456789abcdef"
PD_SECRET = "load-pagerduty-secret"
SERVICES = 10


@dataclass
class Running:
    url: str
    api_key: str
    store: Store
    database_url: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]]

    def start_worker(self) -> None:
        """One more `python app.py worker`."""
        self.procs.append(_spawn(["app.py", "worker"], self.env))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _catalog(tmp: Path) -> Path:
    repo = tmp / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with (EXAMPLE / "repo.fi").open("rb") as stream:
        subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], stdin=stream, check=True)
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "main"], check=True)
    lines = ["defaults: {lookback: 2h, after: 15m}", "services:"]
    for n in range(SERVICES):
        lines += [
            f"  svc-{n}:",
            f"    pagerduty_service_ids: [PSVC{n}]",
            f'    logs: [{{kind: files, paths: ["{EXAMPLE}/logs/*.log"]}}]',
            f'    code: [{{kind: git, path: "{repo}"}}]',
            f'    deploys: [{{kind: deploys_file, path: "{EXAMPLE}/deploys.json"}}]',
            f'    metrics: [{{kind: metrics_csv, path: "{EXAMPLE}/metrics.csv"}}]',
        ]
    path = tmp / "services.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process, its group, and RQ's work horses (which live in sessions of their own)."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    proc.wait(timeout=10)


def _serve_slack(pipe: Connection) -> None:
    standin = SlackStandin().start()
    pipe.send(standin.api_url)
    threading.Event().wait()


def _slack_elsewhere() -> tuple[multiprocessing.Process, str]:
    """The Slack stand-in in a process of its own, so its threads do not slow the load generator down."""
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=_serve_slack, args=(theirs,), daemon=True)
    process.start()
    return process, str(ours.recv())


@contextmanager
def running_stack(tmp: Path, *, web_workers: int) -> Iterator[Running]:
    name = f"ir_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    store = Store.from_url(database_url)
    slack, slack_url = _slack_elsewhere()
    queue = f"load-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "JIRA_", "PAGERDUTY_"))},
        "APP_ENV": "prod",
        "LOG_LEVEL": "warning",
        "DATA_DIR": str(tmp / "var"),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": queue,
        "SERVICES_FILE": str(_catalog(tmp)),
        "SLACK_BOT_TOKEN": "xoxb-load-0000000000-0000000000000",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_url,
        "PAGERDUTY_WEBHOOK_SECRETS": json.dumps([PD_SECRET]),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SESSION_SECRET": "load-session-secret",
        "API_RATE_LIMIT_PER_KEY": "1000000/minute",
        "API_RATE_LIMIT_PER_IP": "1000000/minute",
        "WORKER_SWEEP_INTERVAL_S": "5",
    }
    procs = [_spawn(["app.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(web_workers)], env)]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("web process did not become ready")
            time.sleep(0.2)
        key = create_api_key("load", ["admin"], store=store)[0]
        yield Running(url=url, api_key=key, store=store, database_url=database_url, env=env, procs=procs)
    finally:
        for proc in procs:
            _stop(proc)
        slack.kill()
        slack.join(timeout=10)
        store.engine.dispose()
        redis = Redis.from_url(REDIS_URL)
        for key_name in redis.scan_iter(f"*{queue}*"):
            redis.delete(key_name)
        redis.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
