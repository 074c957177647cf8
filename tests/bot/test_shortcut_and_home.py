""" "Investigate this message", its modal, and the App Home tab, through the real Bolt app and checked against Block Kit limits."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any

from blockkit import problems
from bot_harness import WebServer, Worker, fixture, wait_until
from standin_slack import SlackStandin

from bot.home import home_view
from bot.modals import ModalContext, investigate_modal, message_text
from core.catalog import Catalog, ServiceSpec
from core.models import Investigation
from core.runtime import get_store

CHANNEL = "C0INCIDENT"
HUMAN_TS = "1748554200.000300"
HUMAN = {"type": "message", "user": "U0DEV0001", "text": "checkout-api is throwing 500s on /pay since 21:30, anyone?", "ts": HUMAN_TS}


def _rows() -> list[Investigation]:
    rows, _ = get_store().list_investigations()
    return rows


def _shortcut(message: dict[str, Any], trigger: str = "1111.2222.shortcut") -> dict[str, Any]:
    return {
        "type": "message_action",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "action_ts": "1748554300.123456",
        "team": {"id": "T0TEAM001", "domain": "acme"},
        "user": {"id": "U0ONCALL1", "username": "oncall", "team_id": "T0TEAM001", "name": "oncall"},
        "channel": {"id": CHANNEL, "name": "incidents"},
        "is_enterprise_install": False,
        "callback_id": "ir_investigate_message",
        "trigger_id": trigger,
        "response_url": "https://hooks.slack.com/app/T0TEAM001/1/abc",
        "message_ts": message["ts"],
        "message": message,
    }


def _submission(view: dict[str, Any], values: dict[str, Any], user: str = "U0ONCALL1") -> dict[str, Any]:
    state = {"values": {block: {block: value} for block, value in values.items()}}
    return {
        "type": "view_submission",
        "team": {"id": "T0TEAM001", "domain": "acme"},
        "user": {"id": user, "username": "oncall", "name": "oncall", "team_id": "T0TEAM001"},
        "api_app_id": "A0IRAPP01",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "trigger_id": "3333.4444.submit",
        "view": {**view, "state": state},
        "response_urls": [],
        "is_enterprise_install": False,
    }


def _block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def _choose(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}


def _open_from_message(web: WebServer, slack: SlackStandin, message: dict[str, Any]) -> dict[str, Any]:
    assert web.action(_shortcut(message)).status_code == 200
    opened = wait_until(lambda: slack.of("views.open"))
    return dict(opened[0].params["view"])


def test_message_shortcut_opens_a_modal_prefilled_with_guessed_service_and_time_within_3_seconds(
    web: WebServer, slack: SlackStandin
) -> None:
    sent = time.monotonic()
    response = web.action(_shortcut(HUMAN))
    acked = time.monotonic()

    opened = wait_until(lambda: slack.of("views.open"))
    assert response.status_code == 200 and acked - sent < 3.0
    assert opened[0].at - sent < 3.0 and opened[0].params["trigger_id"] == "1111.2222.shortcut"
    view = opened[0].params["view"]
    assert problems(view) == []
    assert _block(view, "service")["element"]["initial_option"]["value"] == "checkout"
    assert _block(view, "at")["element"]["initial_date_time"] == int(float(HUMAN_TS))
    assert "throwing 500s" in _block(view, "what")["element"]["initial_value"]
    assert all(b.get("block_id") != "channel" for b in view["blocks"])


def test_message_shortcut_on_an_alert_post_guesses_the_service_from_its_labels(web: WebServer, slack: SlackStandin) -> None:
    view = _open_from_message(web, slack, fixture("datadog_triggered.json")["event"])

    assert _block(view, "service")["element"]["initial_option"]["value"] == "notifications-worker"


def test_message_shortcut_without_a_recognisable_service_says_so_and_leaves_the_picker_empty(web: WebServer, slack: SlackStandin) -> None:
    view = _open_from_message(web, slack, {**HUMAN, "text": "something is off with logins"})

    assert "initial_option" not in _block(view, "service")["element"]
    assert "could not tell the service" in view["blocks"][0]["elements"][0]["text"]


def test_modal_submission_starts_one_investigation_in_the_messages_thread(web: WebServer, slack: SlackStandin) -> None:
    view = {**_open_from_message(web, slack, HUMAN), "id": "V0SUBMIT01"}
    at = int(datetime(2025, 5, 29, 21, 30, tzinfo=UTC).timestamp())
    payload = _submission(
        view,
        {
            "service": _choose("checkout"),
            "at": {"type": "datetimepicker", "selected_date_time": at},
            "since": _choose("2h"),
            "what": {"type": "plain_text_input", "value": "500s on /pay"},
        },
    )

    first = web.action(payload)
    again = web.action(copy.deepcopy(payload))

    assert first.status_code == 200 and first.text == "" and again.status_code == 200
    row = wait_until(_rows)[0]
    time.sleep(0.5)
    assert len(_rows()) == 1
    assert (row.service, row.slack_channel, row.slack_thread_ts, row.requested_by) == ("checkout", CHANNEL, HUMAN_TS, "U0ONCALL1")
    assert row.at.replace(tzinfo=UTC) == datetime(2025, 5, 29, 21, 30, tzinfo=UTC)
    assert (row.window_end.replace(tzinfo=UTC) - row.window_start.replace(tzinfo=UTC)).total_seconds() >= 7200
    started = [c for c in slack.of("chat.postMessage", thread_ts=HUMAN_TS) if "started an investigation of *checkout*" in c.params["text"]]
    assert len(started) == 1


def test_modal_submission_without_a_service_or_with_a_future_time_shows_field_errors(web: WebServer, slack: SlackStandin) -> None:
    view = {**_open_from_message(web, slack, {**HUMAN, "text": "hmm"}), "id": "V0SUBMIT02"}
    future = int(time.time()) + 3600

    response = web.action(_submission(view, {"at": {"type": "datetimepicker", "selected_date_time": future}, "since": _choose("1h")}))

    body = response.json()
    assert body["response_action"] == "errors" and set(body["errors"]) == {"service", "at"}
    time.sleep(0.3)
    assert _rows() == []


def test_app_home_shows_the_users_recent_and_running_investigations_and_a_start_button(
    web: WebServer, slack: SlackStandin, worker: Worker
) -> None:
    assert "Queued an investigation" in web.command(fixture("slash_command.json")).text
    assert worker.run_starts() == 1
    wait_until(_rows)
    envelope = {
        "type": "event_callback",
        "team_id": "T0TEAM001",
        "api_app_id": "A0IRAPP01",
        "event_id": "Ev0HOME0001",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": "U0ONCALL1", "channel": "D0HOME0001", "tab": "home", "event_ts": "1748554300.000100"},
    }

    assert web.event(envelope).status_code == 200

    published = wait_until(lambda: slack.of("views.publish"))
    view = published[0].params["view"]
    assert published[0].params["user_id"] == "U0ONCALL1" and problems(view) == []
    text = "\n".join(str(b.get("text", {}).get("text", "")) for b in view["blocks"])
    row = _rows()[0]
    assert text.count(f"/investigations/{row.id}|") == 2, text
    assert "*Running now*" in text and "*Your recent investigations*" in text
    buttons = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["ir_home_start"]


def test_home_button_opens_the_start_modal_and_its_submission_posts_in_the_chosen_channel(
    web: WebServer, slack: SlackStandin, worker: Worker
) -> None:
    click = {
        "type": "block_actions",
        "user": {"id": "U0ONCALL1", "username": "oncall", "name": "oncall", "team_id": "T0TEAM001"},
        "api_app_id": "A0IRAPP01",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "view", "view_id": "V0HOME0001"},
        "trigger_id": "5555.6666.home",
        "team": {"id": "T0TEAM001", "domain": "acme"},
        "view": {"id": "V0HOME0001", "type": "home"},
        "actions": [
            {"action_id": "ir_home_start", "block_id": "home_actions", "value": "home", "type": "button", "action_ts": "1748554301.1"}
        ],
    }

    assert web.action(click).status_code == 200
    view = {**wait_until(lambda: slack.of("views.open"))[0].params["view"], "id": "V0HOMESTART"}
    services = [o["value"] for o in _block(view, "service")["element"]["options"]]
    assert services == ["checkout", "notifications-worker"] and problems(view) == []

    response = web.action(
        _submission(
            view,
            {
                "service": _choose("notifications-worker"),
                "since": _choose("1h"),
                "what": {"type": "plain_text_input", "value": "jobs failing"},
                "channel": {"type": "conversations_select", "selected_conversation": CHANNEL},
            },
        )
    )

    assert response.status_code == 200 and response.text == ""
    assert worker.run_starts() == 1
    row = wait_until(_rows)[0]
    root = slack.of("chat.postMessage", channel=CHANNEL)[0]
    assert "started an investigation of *notifications-worker*" in root.params["text"] and "thread_ts" not in root.params
    assert (row.service, row.slack_channel, row.requested_by) == ("notifications-worker", CHANNEL, "U0ONCALL1") and row.slack_thread_ts


def test_modal_and_home_stay_within_block_kit_limits_for_big_catalogs_and_long_texts() -> None:
    catalog = Catalog(services={f"service-{i:03d}-" + "x" * 90: ServiceSpec() for i in range(150)})
    wanted = sorted(catalog.services)[140]
    long_message = {"type": "message", "user": "U1", "text": "word " * 2000, "ts": "1748554200.000300"}

    modal = investigate_modal(
        catalog,
        context=ModalContext(origin="home"),
        service=wanted,
        at=datetime(2025, 5, 29, 21, 30, tzinfo=UTC),
        what=message_text(long_message),  # type: ignore[arg-type]
        note="n" * 5000,
    )
    rows = [
        Investigation(
            source="api",
            service="s" * 200,
            title="t|<>&" * 120,
            window_start=datetime.now(UTC),
            window_end=datetime.now(UTC),
            at=datetime.now(UTC),
            created_at=datetime.now(UTC),
        )
        for _ in range(10)
    ]
    home = home_view(mine=rows, running=rows, public_url="https://ir.example.com")

    assert problems(modal) == [] and problems(home) == []
    assert _block(modal, "service")["element"]["initial_option"]["value"] == wanted
    assert len(_block(modal, "service")["element"]["options"]) == 100
