"""Real processes for the fault tests: `python app.py serve` and `python app.py worker` on loopback, each in its own
process group so a test can SIGKILL one and a finalizer can always end them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
from bot_harness import PD_WEBHOOK_SECRET, WebServer
from redis import Redis
from standin_slack import SlackStandin

from core.models import Investigation, Status
from core.store import Store
from tests.standins.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "checkout-discount-crash"
EXAMPLE_AT = "2026-03-10T13:38:14Z"


def investigate_command(trigger: str, *, text: str = f"checkout 5xx on /pay --since 2h --at {EXAMPLE_AT}") -> dict[str, str]:
    """The form fields of an on-call's `/investigate` in the incident channel; `trigger` makes each delivery distinct."""
    return {
        "command": "/investigate",
        "text": text,
        "user_id": "U0ONCALL1",
        "channel_id": "C0INCIDENT",
        "team_id": "T0TEAM001",
        "trigger_id": trigger,
    }


T = TypeVar("T")


def until(condition: Callable[[], T | None], *, timeout: float = 30.0, every: float = 0.1, what: str = "condition") -> T:
    """Poll until `condition()` is truthy and return it; fail the test with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(every)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the process and everything it started (an OOM kill or a lost node, seen from outside).

        RQ puts each work horse in a session of its own, so the process group alone would miss it.
        """
        for process in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        descendants = self._tree()[1:]
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.pid, signal.SIGTERM)
                self.popen.wait(timeout=10)
        # The group may still hold a work horse or a scheduler after the leader is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        for process in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if self.popen.poll() is None:
            self.popen.wait(timeout=10)

    def descendants_running(self, fragment: str) -> list[psutil.Process]:
        """Descendants whose command line contains `fragment` (the log readers a work horse started)."""
        found = []
        for process in self._tree()[1:]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if fragment in " ".join(process.cmdline()):
                    found.append(process)
        return found

    def child_talking_to(self, port: int) -> psutil.Process | None:
        """The descendant holding a connection to 127.0.0.1:`port` (RQ's work horse mid-request)."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        for child in children:
            try:
                if any(c.raddr and c.raddr.port == port for c in child.net_connections(kind="tcp")):
                    return child
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return None


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log = log_dir / f"{name}-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        popen = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return Proc(name=name, popen=popen, log=log)


@dataclass
class Web:
    proc: Proc
    url: str

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=15, **kwargs)


@dataclass
class Stack:
    """The processes of one test, sharing one environment; `close()` ends every one of them."""

    env: dict[str, str]
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def web(self, *, workers: int = 1, **overrides: str) -> Web:
        port = free_port()
        env = {**self.env, "PUBLIC_URL": f"http://127.0.0.1:{port}", **overrides}
        proc = spawn("web", ["app.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)], env, self.log_dir)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if not proc.alive():
                raise AssertionError(f"web exited early:\n{proc.text()[-3000:]}")
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        until(up, timeout=40, every=0.2, what="web /healthz")
        return Web(proc=proc, url=url)

    def worker(self, **overrides: str) -> Proc:
        proc = spawn("worker", ["app.py", "worker"], {**self.env, **overrides}, self.log_dir)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()


def checkout_service(
    repo: Path, *, name: str = "checkout", extra: str = "", logs: Path = EXAMPLE / "logs", log_sources: str | None = None
) -> str:
    """The bundled example incident as a catalog entry (YAML), optionally with more sources or other logs.

    `log_sources` replaces the log files with these flow-style entries (a remote store, say).
    """
    sources = log_sources or f'{{kind: files, paths: ["{logs}/*.log"]}}'
    return f"""  {name}:
    aliases: ["Checkout API"]
    pagerduty_service_ids: [PCHECKOUT]
    jira_project: SHOP
    logs: [{sources}]
    code: [{{kind: git, path: "{repo}"}}]
    deploys: [{{kind: deploys_file, path: "{EXAMPLE}/deploys.json"}}]
    metrics: [{{kind: metrics_csv, path: "{EXAMPLE}/metrics.csv"}}]
    runbooks: [{{kind: runbooks_dir, path: "{EXAMPLE}/runbooks"}}]
{extra}"""


def slack_surface(web: Web) -> WebServer:
    """Signed Slack deliveries into the web process's /slack/events."""
    return WebServer(url=web.url, http=httpx.Client(base_url=web.url, timeout=15))


def pagerduty_delivery(
    incident_id: str,
    *,
    event_id: str | None = None,
    service_id: str = "PCHECKOUT",
    title: str = "HighErrorRate checkout",
    at: str = EXAMPLE_AT,
) -> tuple[bytes, dict[str, str]]:
    """A signed PagerDuty v3 `incident.triggered` webhook delivery: (body, headers)."""
    data = {
        "id": incident_id,
        "type": "incident",
        "title": title,
        "status": "triggered",
        "urgency": "high",
        "created_at": at,
        "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
        "service": {"id": service_id, "summary": service_id},
    }
    event = {
        "id": event_id or f"EV-{incident_id}",
        "event_type": "incident.triggered",
        "resource_type": "incident",
        "occurred_at": at,
        "data": data,
    }
    body = json.dumps({"event": event}).encode()
    signature = hmac.new(PD_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1={signature}"}


def finished(db: Store) -> Investigation | None:
    rows, _ = db.list_investigations()
    assert len(rows) <= 1, [r.id for r in rows]
    return rows[0] if rows and Status(rows[0].status).finished else None


def report_posts(slack: SlackStandin) -> list[Any]:
    return [c for c in slack.of("chat.postMessage") if any(b.get("type") == "header" for b in c.params.get("blocks") or [])]


def failure_posts(slack: SlackStandin) -> list[Any]:
    return [c for c in slack.of("chat.postMessage") if "The investigation failed" in c.params.get("text", "")]


def told_once(slack: SlackStandin, final: Investigation) -> None:
    """The thread shows one outcome, the stored one, and it shows it once."""

    def outcome() -> list[Any]:
        return report_posts(slack) + failure_posts(slack)

    until(outcome, timeout=30, what="the outcome in the thread")
    expected, other = (failure_posts, report_posts) if final.status == Status.failed.value else (report_posts, failure_posts)
    assert [c.params["thread_ts"] for c in expected(slack)] == [final.slack_thread_ts]
    assert other(slack) == []


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def forget_queue(redis_url: str, queue_name: str) -> None:
    """Delete every Redis key of a test's private queue (jobs, registries, claims); never flush shared Redis."""
    try:
        redis = Redis.from_url(redis_url, socket_connect_timeout=1)
        for key in redis.scan_iter(f"*{queue_name}*"):
            redis.delete(key)
        redis.close()
    except Exception:  # a test that stopped its own Redis leaves nothing here to clean
        pass
