"""What listeners do on their own: refusals, failures of Slack or the database, unmapped services, duplicates."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from bot_harness import WebServer, Worker, fixture, wait_until
from redis import Redis
from rq import Queue
from standin_slack import SlackStandin, error

from core.runtime import get_store


def test_slash_command_outside_allowed_channels_is_refused_in_the_ack(
    web: WebServer, slack: SlackStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    web_settings_fields = fixture("slash_command.json") | {"channel_id": "C0RANDOM"}
    from core.settings import get_settings

    monkeypatch.setattr(get_settings(), "slack_allowed_channels", ["C0INCIDENT"])

    response = web.command(web_settings_fields)

    assert response.status_code == 200 and "not enabled in this channel" in response.text and "<#C0INCIDENT>" in response.text
    time.sleep(0.3)
    assert not slack.of("chat.postMessage") and get_store().list_investigations()[0] == []


def test_user_group_allow_list_is_resolved_through_slack(web: WebServer, slack: SlackStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.setattr(get_settings(), "slack_allowed_users", ["S0ONCALLS"])
    slack.user_groups["S0ONCALLS"] = ["U0ONCALL1"]

    allowed = web.command(fixture("slash_command.json"))
    refused = web.command(fixture("slash_command.json") | {"user_id": "U0STRANGER", "trigger_id": "other-trigger"})

    assert "Queued an investigation" in allowed.text
    assert "not on the list of people allowed" in refused.text
    assert len(slack.of("usergroups.users.list")) == 1


def test_unknown_service_and_empty_text_answer_in_the_ack(web: WebServer, slack: SlackStandin) -> None:
    unknown = web.command(fixture("slash_command.json") | {"text": "notifcations-worker"})
    empty = web.command(fixture("slash_command.json") | {"text": ""})

    assert "Did you mean `notifications-worker`?" in unknown.text
    assert "Usage:" in empty.text
    assert not slack.of("chat.postMessage")


def test_bot_not_in_channel_tells_the_caller_and_starts_nothing(web: WebServer, slack: SlackStandin, worker: Worker) -> None:
    slack.script("chat.postMessage", error("not_in_channel"))

    assert web.command(fixture("slash_command.json")).status_code == 200

    assert worker.run_starts() == 1
    ephemeral = wait_until(lambda: slack.of("chat.postEphemeral"))
    assert "not_in_channel" in ephemeral[0].params["text"] and "/invite" in ephemeral[0].params["text"]
    assert get_store().list_investigations()[0] == []


def test_database_down_gets_a_try_again_ephemeral_not_an_error(
    web: WebServer, slack: SlackStandin, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from core.store import Store

    def down(*_args: Any, **_kwargs: Any) -> bool:
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(Store, "claim_delivery", down)

    response = web.command(fixture("slash_command.json"))

    assert response.status_code == 200
    assert worker.run_starts() == 1
    ephemeral = wait_until(lambda: slack.of("chat.postEphemeral"))
    assert "temporarily unavailable" in ephemeral[0].params["text"] and "try again in a minute" in ephemeral[0].params["text"]
    assert not slack.of("chat.postMessage"), "no thread is opened for a request that could not be recorded"


def test_a_start_that_fails_unexpectedly_tells_the_caller_instead_of_leaving_them_waiting(
    web: WebServer, slack: SlackStandin, worker: Worker, catalog_file: Path
) -> None:
    response = web.command(fixture("slash_command.json"))
    assert "Queued an investigation" in response.text
    # Someone saves a broken catalog between the ack and the worker's start.
    broken = catalog_file.with_suffix(".new")
    broken.write_text("services:\n  notifications-worker: [unclosed\n", encoding="utf-8")
    broken.replace(catalog_file)

    worker.drain()

    ephemeral = wait_until(lambda: slack.of("chat.postEphemeral"))
    assert len(ephemeral) == 1 and ephemeral[0].params["user"] == fixture("slash_command.json")["user_id"]
    text = ephemeral[0].params["text"]
    assert "could not be started" in text and "CatalogError" in text and "services.yaml" in text and "run the command again" in text
    assert not slack.of("chat.postMessage"), "no thread was opened"
    assert get_store().list_investigations()[0] == []


def test_slash_command_retried_with_the_same_trigger_starts_one_investigation(
    web: WebServer, slack: SlackStandin, worker: Worker, redis_conn: Redis, queue_name: str
) -> None:
    web.command(fixture("slash_command.json"))
    web.command(fixture("slash_command.json"))

    assert worker.run_starts() == 1
    time.sleep(0.5)
    assert worker.run_starts(timeout=0) == 0, "the repeated trigger queued no second start"
    rows, _ = get_store().list_investigations()
    assert len(rows) == 1 and rows[0].source == "slack_command" and rows[0].requested_by == "U0ONCALL1"
    assert Queue(queue_name, connection=redis_conn).job_ids == [rows[0].id]
    assert len(slack.of("chat.postMessage", channel="C0INCIDENT")) == 1


def test_unmapped_pagerduty_service_gets_one_how_to_map_reply(web: WebServer, slack: SlackStandin) -> None:
    post = fixture("pagerduty_post_triggered.json")
    text = json.dumps(post).replace("PNW0RK1", "PUNKNWN").replace("Notifications Worker", "Billing Cron")
    unmapped = json.loads(text)

    web.event(unmapped)
    web.event(unmapped | {"event_id": "Ev0PDAGAIN"})

    replies = wait_until(lambda: slack.of("chat.postMessage", thread_ts=post["event"]["ts"]))
    time.sleep(0.3)
    replies = slack.of("chat.postMessage", thread_ts=post["event"]["ts"])
    assert len(replies) == 1
    assert "*Billing Cron*" in replies[0].params["text"] and "pagerduty_service_ids: [PUNKNWN]" in replies[0].params["text"]
    assert "PAGERDUTY_SERVICE_MAP" in replies[0].params["text"]
    assert get_store().list_investigations()[0] == []


def test_pagerduty_post_in_an_unwatched_channel_is_ignored(web: WebServer, slack: SlackStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.setattr(get_settings(), "slack_watched_channels", ["C0OTHER"])

    web.event(fixture("pagerduty_post_triggered.json"))

    time.sleep(0.5)
    assert get_store().list_investigations()[0] == []


def test_bot_replies_and_edits_in_a_thread_are_not_questions(web: WebServer, slack: SlackStandin) -> None:
    from agents.flows import window_for
    from core.alert import Alert
    from core.models import Investigation
    from integrations.catalog import get_catalog

    window = window_for(get_catalog())
    row = get_store().create_investigation(
        Investigation(
            source="api",
            service="checkout",
            alert=Alert(title="t", service="checkout").model_dump(mode="json"),
            window_start=window.start,
            window_end=window.end,
            at=window.at,
            slack_channel="C0INCIDENT",
            slack_thread_ts="1748554782.001200",
        )
    )
    reply = fixture("thread_reply.json")
    web.event(reply | {"event_id": "Ev1", "event": reply["event"] | {"bot_id": "B0SOMEBOT"}})
    web.event(
        reply
        | {
            "event_id": "Ev2",
            "event": {"type": "message", "subtype": "message_changed", "channel": "C0INCIDENT", "message": reply["event"]},
        }
    )
    web.event(reply | {"event_id": "Ev3", "event": reply["event"] | {"thread_ts": reply["event"]["ts"]}})
    web.event(reply | {"event_id": "Ev4"})

    wait_until(lambda: get_store().follow_ups(row.id))
    time.sleep(0.3)
    assert [f.question for f in get_store().follow_ups(row.id)] == ["which commit?"]
