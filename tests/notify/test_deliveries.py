"""Telling people a report is ready: one delivery per (investigation, target), through the queue, each exactly once.

A real RQ worker runs the investigation and the deliveries it queues; the targets are a
webhook receiver verifying Standard Webhooks signatures, a real SMTP server (aiosmtpd),
and a webhook that is down. One failing target never touches the others or the report.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bot_harness import Worker
from redis import Redis
from smtp_inbox import Inbox, start_smtp
from standin_receiver import Receiver

from agents import notify
from agents.flows import open_investigation, window_for
from core.alert import Alert
from core.models import Source, Status
from core.runtime import get_store
from core.settings import reset_settings
from integrations.catalog import get_catalog
from tests.standins.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "checkout-discount-crash"
SIGNING = "whsec_" + base64.b64encode(b"a-webhook-secret-of-32-bytes-ok!").decode()


@pytest.fixture
def targets(app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, Inbox, Receiver]]:
    receiver = Receiver(secret=SIGNING).start()
    refusing = Receiver(ok_status=403).start()
    smtp, inbox = start_smtp()
    monkeypatch.setenv("HOOK_SECRET", SIGNING)
    catalog = tmp_path / "services.yaml"
    catalog.write_text(
        f"""
defaults:
  notify:
    - {{kind: webhook, url: "{receiver.url}/ignored-default"}}
services:
  checkout:
    logs:
      - {{kind: files, paths: ["{EXAMPLE}/logs"]}}
    notify:
      - {{kind: webhook, name: ops-hook, url: "{receiver.url}/ir", secret_env: HOOK_SECRET}}
      - {{kind: email, to: [oncall@example.com], sender: ir@example.com, host: 127.0.0.1, port: {smtp.port}, security: none}}
      - {{kind: webhook, name: down, url: "http://127.0.0.1:{free_port()}/hook", timeout_s: 2}}
      - {{kind: webhook, name: refusing, url: "{refusing.url}/hook"}}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("SERVICES_FILE", str(catalog))
    reset_settings()
    yield receiver, inbox, refusing
    smtp.stop()
    receiver.stop()
    refusing.stop()


def _investigate(queue_name: str) -> str:
    alert = Alert(title="checkout 500s on /pay", service="checkout", created_at=datetime(2026, 3, 10, 13, 38, 14, tzinfo=UTC))
    row, _ = open_investigation(alert=alert, service="checkout", source=Source.api, window=window_for(get_catalog(), at=alert.created_at))
    Worker(Redis.from_url("redis://127.0.0.1:6379/0"), queue_name).drain()
    return row.id


def test_each_target_is_told_once_and_one_failing_target_touches_nothing_else(
    targets: tuple[Receiver, Inbox, Receiver], app_env: dict[str, str]
) -> None:
    receiver, inbox, _refusing = targets
    investigation_id = _investigate(app_env["QUEUE_NAME"])
    store = get_store()

    assert Status(store.require(investigation_id).status).finished and store.require(investigation_id).report
    [hook] = receiver.received
    assert hook.path == "/ir" and receiver.refused == []
    body = json.loads(hook.body)
    assert body["investigation_id"] == investigation_id and body["root_cause"]["category"]
    [mail] = inbox.messages
    assert investigation_id in mail.as_string()
    rows = {n.label.split(" ")[0]: n for n in store.notifications(investigation_id)}
    assert set(rows) == {"notify:ops-hook", "notify:email", "notify:down", "notify:refusing"}
    assert rows["notify:ops-hook"].status == rows["notify:email"].status == "delivered"
    # Down: a transient failure, queued again with backoff; refused (403): permanent, failed at once with why.
    assert (
        rows["notify:down"].status == "pending"
        and rows["notify:down"].attempts == 1
        and "did not answer" in (rows["notify:down"].error or "")
    )
    assert rows["notify:refusing"].status == "failed" and "403" in (rows["notify:refusing"].error or "")
    # The default targets apply only to services that list none.
    assert all("ignored-default" not in got.path for got in receiver.received)


def test_a_delivery_job_run_again_sends_nothing_twice(targets: tuple[Receiver, Inbox, Receiver], app_env: dict[str, str]) -> None:
    receiver, inbox, _ = targets
    investigation_id = _investigate(app_env["QUEUE_NAME"])
    keys = {n.label.split(" ")[0]: n.target for n in get_store().notifications(investigation_id)}

    # A re-delivered job (a worker killed after the send, RQ running it again) and a second fan-out (a re-run of the job).
    assert notify.deliver(investigation_id, keys["notify:ops-hook"]) == "already delivered"
    assert notify.deliver(investigation_id, keys["notify:email"]) == "already delivered"
    notify.fan_out(investigation_id)
    Worker(Redis.from_url("redis://127.0.0.1:6379/0"), app_env["QUEUE_NAME"]).drain()

    assert len(receiver.received) == 1 and len(inbox.messages) == 1


def test_the_last_failed_retry_marks_the_target_failed_for_the_dashboard(
    targets: tuple[Receiver, Inbox, Receiver], app_env: dict[str, str]
) -> None:
    investigation_id = _investigate(app_env["QUEUE_NAME"])
    down = next(n for n in get_store().notifications(investigation_id) if n.label.startswith("notify:down"))

    class LastTry:
        should_retry = False
        args = (investigation_id, down.target)

    notify.on_delivery_failure(LastTry(), None, ConnectionError, ConnectionError("connection refused"), None)

    after = get_store().get_notification(investigation_id, down.target)
    assert after is not None and after.status == "failed" and after.error == "connection refused"


def test_the_api_and_dashboard_show_who_was_told(targets: tuple[Receiver, Inbox, Receiver], app_env: dict[str, str]) -> None:
    from web.service import detail

    investigation_id = _investigate(app_env["QUEUE_NAME"])
    shown = {n.target.split(" ")[0]: n for n in detail(get_store().require(investigation_id)).notifications}
    assert shown["notify:ops-hook"].status == "delivered" and shown["notify:ops-hook"].delivered_at is not None
    assert "HOOK_SECRET" not in str(shown) and SIGNING not in str(shown)
    assert shown["notify:refusing"].status == "failed"
    assert (datetime.now(UTC) - shown["notify:ops-hook"].delivered_at) < timedelta(minutes=5)
