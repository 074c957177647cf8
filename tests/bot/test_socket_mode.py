"""Socket Mode end to end: a loopback WebSocket stand-in speaking Slack's protocol drives the real handler, Bolt app and a worker."""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bot_harness import BOT_TOKEN, SIGNING_SECRET, Worker, fixture
from standin_jira import JiraStandin
from standin_slack import SlackStandin
from standin_socket_mode import SocketModeStandin

from core.models import Investigation
from core.runtime import get_store
from core.settings import Settings, get_settings, reset_settings

APP_TOKEN = "xapp-1-A0IRAPP01-1234567890-abcdef0123456789"
CHANNEL = "C0INCIDENT"
FAULTS = Path(__file__).resolve().parents[1] / "faults"


@pytest.fixture
def socket_mode(bot_env: Settings, slack: SlackStandin, monkeypatch: pytest.MonkeyPatch) -> Iterator[SocketModeStandin]:
    """The stand-in, and the bot connected to it the way `serve` connects when SLACK_APP_TOKEN is set."""
    from bot.socket import socket_mode_handler

    standin = SocketModeStandin().start()
    slack.attach_socket_mode(standin)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    reset_settings()
    handler = socket_mode_handler(get_settings())
    handler.connect()
    standin.wait_connected()
    yield standin
    handler.close()
    standin.stop()


def _report_posts(slack: SlackStandin) -> list[Any]:
    return [c for c in slack.of("chat.postMessage") if any(b.get("type") == "header" for b in c.params.get("blocks") or [])]


def _only_investigation() -> Investigation:
    rows, _ = get_store().list_investigations()
    assert len(rows) == 1
    return rows[0]


def test_hello_comes_after_connections_open_with_the_app_token(socket_mode: SocketModeStandin, slack: SlackStandin) -> None:
    opened = slack.of("apps.connections.open")

    assert len(opened) == 1 and opened[0].headers["authorization"] == f"Bearer {APP_TOKEN}"
    assert socket_mode.hellos == 1 and socket_mode.open_connections == 1 and socket_mode.refused == 0


def test_command_report_duplicate_question_and_jira_over_socket_mode_with_a_reconnect(
    socket_mode: SocketModeStandin, slack: SlackStandin, jira: JiraStandin, worker: Worker
) -> None:
    command = socket_mode.deliver("slash_commands", fixture("slash_command.json"))
    ack = socket_mode.ack_for(command)
    assert "Queued an investigation of *notifications-worker*" in ack["payload"]["text"]
    reports = worker.until(lambda: _report_posts(slack), timeout=90)
    investigation = _only_investigation()
    assert reports[0].params["thread_ts"] == investigation.slack_thread_ts

    socket_mode.disconnect()
    socket_mode.wait_connected(hellos=2)
    slack.wait_for(lambda: socket_mode.open_connections == 1)
    assert len(slack.of("apps.connections.open")) == 2

    question = fixture("thread_reply.json")
    question["event"]["thread_ts"] = investigation.slack_thread_ts
    first = socket_mode.deliver("events_api", question)
    socket_mode.ack_for(first)
    retried = socket_mode.deliver("events_api", copy.deepcopy(question), retry_attempt=1, retry_reason="timeout")
    socket_mode.ack_for(retried)

    def answers() -> list[Any]:
        return [
            c for c in slack.of("chat.postMessage", thread_ts=investigation.slack_thread_ts) if c.params["text"].startswith("<@U0ONCALL1>")
        ]

    worker.until(answers, timeout=90)
    worker.drain()
    assert len(answers()) == 1
    assert len(get_store().follow_ups(investigation.id)) == 1

    click = fixture("block_actions_create_jira.json")
    click["actions"][0]["value"] = f'{{"investigation_id":"{investigation.id}"}}'
    socket_mode.ack_for(socket_mode.deliver("interactive", click))
    worker.until(lambda: (link := get_store().get_jira(investigation.id)) is not None and link.key, timeout=90)
    slack.wait_for(
        lambda: [
            c for c in slack.of("chat.postMessage", thread_ts=investigation.slack_thread_ts) if ":ticket: Jira ticket" in c.params["text"]
        ]
    )
    assert len(jira.created()) == 1
    assert socket_mode.refused == 0


def test_alert_post_and_message_shortcut_over_socket_mode(socket_mode: SocketModeStandin, slack: SlackStandin) -> None:
    socket_mode.ack_for(socket_mode.deliver("events_api", fixture("grafana_firing.json")))
    slack.wait_for(lambda: get_store().list_investigations()[0])
    assert _only_investigation().service == "checkout"

    shortcut = {
        "type": "message_action",
        "callback_id": "ir_investigate_message",
        "trigger_id": "7777.8888.socket",
        "user": {"id": "U0ONCALL1", "username": "oncall"},
        "channel": {"id": CHANNEL, "name": "incidents"},
        "team": {"id": "T0TEAM001", "domain": "acme"},
        "message_ts": "1748554200.000300",
        "message": {"type": "message", "user": "U0DEV0001", "text": "notif is down", "ts": "1748554200.000300"},
    }
    socket_mode.ack_for(socket_mode.deliver("interactive", shortcut))
    opened = slack.wait_for(lambda: slack.of("views.open"))
    assert opened[0].params["view"]["blocks"][0]["block_id"] == "service"


def test_serve_with_two_workers_holds_one_socket_mode_connection_and_a_worker_posts_the_report(
    app_env: dict[str, str], slack: SlackStandin, catalog_file: Path, tmp_path: Path
) -> None:
    """`python app.py serve --workers 2` with SLACK_APP_TOKEN, and `python app.py worker`, as deployed."""
    if str(FAULTS) not in sys.path:
        sys.path.insert(0, str(FAULTS))
    from harness import Stack

    standin = SocketModeStandin().start()
    slack.attach_socket_mode(standin)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "JIRA_", "PAGERDUTY_", "SERVICES_"))},
        **app_env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SERVICES_FILE": str(catalog_file),
        "LOG_LEVEL": "warning",
    }
    stack = Stack(env=env, log_dir=tmp_path)
    try:
        stack.web(workers=2)
        standin.wait_connected(timeout=30)
        stack.worker()
        time.sleep(2.0)  # every web worker process is up by now; a second connection would have opened
        assert (standin.hellos, standin.open_connections, len(slack.of("apps.connections.open"))) == (1, 1, 1)

        ack = standin.ack_for(standin.deliver("slash_commands", fixture("slash_command.json")), timeout=10)
        assert "Queued an investigation" in ack["payload"]["text"]
        slack.wait_for(lambda: _report_posts(slack), timeout=90)
        assert standin.hellos == 1
    finally:
        stack.close()
        standin.stop()
