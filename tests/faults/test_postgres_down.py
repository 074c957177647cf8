"""PostgreSQL down: /readyz says so, the API answers 503 in the standard error format, Slack users get an ephemeral
"temporarily unavailable", and once the database is back nothing half-written is left and work resumes.
The test runs a throwaway PostgreSQL cluster of its own; the machine's shared one is never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import EXAMPLE_AT, Stack, free_port, slack_surface, until
from sqlalchemy import create_engine, text
from standin_slack import SlackStandin

from core.models import Status
from core.store import Store
from web.auth import create_api_key

CHANNEL = "C0INCIDENT"
TABLES = ("investigations", "progress_events", "inbound_deliveries", "follow_ups", "jira_links")


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class OwnPostgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ir-fault-pg-"))
        self.data = self.root / "data"
        # initdb refuses to run as root; the cluster then belongs to the postgres account.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def init(self) -> None:
        initdb = _pg_bin("initdb")
        assert initdb is not None
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        assert pg_ctl is not None
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        assert pg_ctl is not None
        subprocess.run(
            [*self.as_user, pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if _pg_bin("initdb") is None or _pg_bin("pg_ctl") is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries to run a throwaway cluster")
    cluster = OwnPostgres()
    cluster.init()
    cluster.start()
    yield cluster
    cluster.remove()


def row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()) for table in TABLES}
    engine.dispose()
    return counts


def test_postgres_down_is_503_and_ephemeral_then_nothing_half_written_when_it_is_back(
    stack: Stack, own_postgres: OwnPostgres, slack: SlackStandin
) -> None:
    store = Store.from_url(own_postgres.url)
    key = create_api_key("faults", ["admin"], store=store)[0]
    store.engine.dispose()
    stack.env["DATABASE_URL"] = own_postgres.url
    web = stack.web()
    stack.worker()
    api = web.client(key)
    assert api.get("/api/v1/investigations").status_code == 200
    before = row_counts(own_postgres.url)

    own_postgres.stop()

    assert api.get("/healthz").status_code == 200
    ready = api.get("/readyz")
    assert ready.status_code == 503 and ready.json()["error"]["details"]["database"].startswith("unreachable")
    for response in (
        api.get("/api/v1/investigations"),
        api.post("/api/v1/investigations", json={"service": "checkout", "alert_text": "5xx on /pay", "at": EXAMPLE_AT}),
    ):
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "DATABASE_UNAVAILABLE" and error["request_id"] == response.headers["X-Request-ID"]
        assert "Traceback" not in response.text and "psycopg" not in response.text
    command = {
        "command": "/investigate",
        "text": f"checkout 5xx --at {EXAMPLE_AT}",
        "user_id": "U0ONCALL1",
        "channel_id": CHANNEL,
        "trigger_id": "3333.4444.pg",
    }
    assert slack_surface(web).command(command).status_code == 200
    told = slack.wait_for(lambda: [c for c in slack.of("chat.postEphemeral") if "temporarily unavailable" in c.params.get("text", "")])
    assert told[0].params["user"] == "U0ONCALL1"
    assert not slack.of("chat.postMessage"), "nothing is posted in the channel for a request that was not recorded"

    own_postgres.start()

    until(lambda: api.get("/readyz").status_code == 200, timeout=30, what="/readyz after PostgreSQL is back")
    assert row_counts(own_postgres.url) == before
    retried = {**command, "trigger_id": "3333.4444.pg-again"}
    assert slack_surface(web).command(retried).status_code == 200
    store = Store.from_url(own_postgres.url, migrate_schema=False)

    def finished() -> bool:
        rows, _ = store.list_investigations()
        return len(rows) == 1 and Status(rows[0].status).finished

    until(finished, timeout=90, every=0.5, what="the retried command's investigation finishing")
    assert store.list_investigations()[0][0].status in (Status.done.value, Status.degraded.value)
    store.engine.dispose()
